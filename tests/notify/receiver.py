"""A real HTTP receiver on 127.0.0.1 in a thread of its own: records every request and answers each
path as the test says (a status code, or hold the request until released)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    at: float  # monotonic time of arrival


class Receiver:
    def __init__(self) -> None:
        self.answered: list[Received] = []  # in the order the answers went out
        self.arrived = 0
        self.status: dict[str, int] = {}  # path -> status to answer (default 200)
        self.delay: dict[str, float] = {}  # path -> seconds before answering
        self._held: dict[str, tuple[asyncio.Event, list[int]]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- test side ------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.answered if 200 <= r.status < 300 and (path is None or r.path == path)]

    def all(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.answered if path is None or r.path == path]

    def hold(self, path: str) -> None:
        """Requests to `path` wait (unanswered) until release()."""
        assert self._loop is not None
        self._held[path] = (asyncio.Event(), [503])

    def held(self, path: str) -> int:
        with self._lock:
            return self._holding.get(path, 0)

    def release(self, path: str, status: int) -> None:
        ev, answer = self._held.pop(path)
        answer[0] = status
        assert self._loop is not None
        self._loop.call_soon_threadsafe(ev.set)

    # --- server side ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        body = await request.read()
        path = request.path
        with self._lock:
            self.arrived += 1
        if self.delay.get(path):
            await asyncio.sleep(self.delay[path])
        held = self._held.get(path)
        if held is not None:
            with self._lock:
                self._holding[path] = self._holding.get(path, 0) + 1
            await held[0].wait()
            status = held[1][0]
        else:
            status = self.status.get(path, 200)
        with self._lock:
            self.answered.append(Received(path, dict(request.headers), body, status, at))
        return web.Response(status=status, text="ok" if status < 300 else "no")

    def start(self) -> Receiver:
        self._holding: dict[str, int] = {}
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="receiver", daemon=True)
        self._thread.start()
        assert ready.wait(10), "receiver did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None:
            for path in list(self._held):
                self.release(path, 503)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
