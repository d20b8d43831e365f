"""A slow exchange REST on 127.0.0.1, for tests run from synchronous code: every request is
forwarded to the simulator's REST one at a time, each answer after `delay_s`, so a warm-up of a
few streams takes seconds of real time (and many bars of a fast simulated clock). While
`refuse(path_and_query)` says so, a request is answered 429 (Retry-After: 0) without asking the
simulator: the exchange throttling some requests past the client's retries."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web


class SlowRest:
    """Use as a context manager; `url` is the proxy's base URL, `requests` counts candle requests."""

    def __init__(self, upstream: str, delay_s: float = 0.5) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay_s = delay_s
        self.url = ""
        self.requests = 0
        self.candle_requests = 0
        self.refuse: Callable[[str], bool] | None = None
        self.refused = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._one_at_a_time: asyncio.Lock | None = None

    def __enter__(self) -> SlowRest:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> str:
        self._one_at_a_time = asyncio.Lock()
        self._session = aiohttp.ClientSession(auto_decompress=True)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._one_at_a_time is not None and self._session is not None
        self.requests += 1
        if "klines" in request.path or "/candles" in request.path:
            self.candle_requests += 1
        async with self._one_at_a_time:
            await asyncio.sleep(self.delay_s)
            refuse = self.refuse
            if refuse is not None and refuse(request.rel_url.raw_path_qs):
                self.refused += 1
                return web.Response(status=429, body=b'{"code":-1003,"msg":"Too many requests."}',
                                    headers={"Retry-After": "0"})
            headers: dict[str, Any] = {k: v for k, v in request.headers.items() if k.lower() != "host"}
            async with self._session.request(request.method, self.upstream + request.rel_url.raw_path_qs,
                                             headers=headers, data=await request.read()) as resp:
                body = await resp.read()
                kept = {k: v for k, v in resp.headers.items()
                        if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")}
                return web.Response(status=resp.status, body=body, headers=kept)
