"""Real servers on 127.0.0.1 between an adapter and the simulator, for what the simulator cannot do
by itself: hold one symbol's REST candle requests, and inject frames into a live WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.helpers.http_server import serve_all
from tests.helpers.ws_relay import relay


class RestProxy:
    """Forwards every REST request to `upstream`; candle requests for symbols in `held` wait until
    `release()`. `waiting` counts the requests being held right now."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.held: set[str] = set()
        self.waiting = 0
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    def hold(self, symbol: str) -> None:
        self.held.add(symbol)
        self._released.clear()

    def release(self) -> None:
        self.held.clear()
        self._released.set()

    def _is_held(self, request: web.Request) -> bool:
        for symbol in self.held:
            if request.query.get("symbol") == symbol or f"/products/{symbol}/candles" in request.path:
                return True
        return False

    async def _forward(self, request: web.Request) -> web.Response:
        if self._is_held(request):
            self.waiting += 1
            try:
                await self._released.wait()
            finally:
                self.waiting -= 1
        assert self._session is not None
        async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                         headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
                                         data=await request.read()) as resp:
            body = await resp.read()
            headers = {k: v for k, v in resp.headers.items()
                       if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")}
            return web.Response(status=resp.status, body=body, headers=headers)

    async def __aenter__(self) -> RestProxy:
        self._session = aiohttp.ClientSession(auto_decompress=True)
        self._runner, port = await serve_all(self._forward)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()


class WsRelay:
    """A WebSocket server that relays every connection to `upstream` (same path and query) and
    lets the test inject frames towards the client."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self.clients: set[ServerConnection] = set()
        self._server: Server | None = None
        self.url = ""

    async def inject(self, *frames: str | bytes) -> None:
        for ws in list(self.clients):
            for frame in frames:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(frame)

    async def _relay(self, client: ServerConnection) -> None:
        await relay(client, self.upstream, self.clients)

    async def __aenter__(self) -> WsRelay:
        self._server = await serve(self._relay, "127.0.0.1", 0, max_size=2**24)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
