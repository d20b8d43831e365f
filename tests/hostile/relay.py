"""A hostile exchange on 127.0.0.1: a WebSocket server that relays every connection to the
simulator (same path and query) and lets a synchronous test inject frames of its own between
the real ones, or take the exchange away (connections dropped, handshakes answered 503) and give
it back. It runs on an event loop of its own in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.helpers.ws_relay import relay


class HostileRelay:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = f"{parts.scheme}://{parts.netloc}"
        self.clients: set[ServerConnection] = set()
        self.connections = 0
        self.down = False
        self.url = ""
        self._server: Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # -- called from the test's thread
    def __enter__(self) -> HostileRelay:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()  # its self-pipe sockets: a later test would see them as unclosed

    def inject(self, *frames: str | bytes) -> int:
        """Send `frames` to every connected client now; how many clients got them."""
        return self._call(self._inject(frames))

    def take_down(self) -> None:
        """Drop every connection; refuse new ones with HTTP 503 until bring_back()."""
        self.down = True
        self._call(self._drop())

    def bring_back(self) -> None:
        self.down = False

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    # -- on the relay's loop
    async def _start(self) -> None:
        self._server = await serve(self._relay, "127.0.0.1", 0, max_size=2**24, process_request=self._gate)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _gate(self, connection: ServerConnection, request: Any) -> Any:
        if self.down:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "exchange down for the test\n")
        return None

    async def _inject(self, frames: tuple[str | bytes, ...]) -> int:
        sent = 0
        for ws in list(self.clients):
            with contextlib.suppress(ConnectionClosed):
                for frame in frames:
                    await ws.send(frame)
                sent += 1
        return sent

    async def _drop(self) -> None:
        for ws in list(self.clients):
            with contextlib.suppress(Exception):
                await ws.close(1012, "service restart")

    async def _relay(self, client: ServerConnection) -> None:
        self.connections += 1
        await relay(client, self.upstream, self.clients)
