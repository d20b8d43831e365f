"""One WebSocket kept open: rate-limited connect, open hook, receive loop, liveness, reconnect.

Every live stream runs its connections through `ReconnectingSocket` and supplies only what is
exchange-specific: the URL, what to send once connected, and what to do with each frame.

- Connect: each attempt takes a token from the stream's connect bucket (the exchange's limit on
  new connections), then reports CONNECTING.
- Connected: reported on the first frame, not on the handshake ("connected" means frames
  arrive); the first frame also resets the backoff.
- Receive: the connection (streaming.adapters.wsframes) splits what it reads into frames and
  calls the frame handler for each data frame inside its read callback, nothing else per frame
  (no timeout per frame: `asyncio.wait_for` costs ~7 us, more than parsing a frame; no queue and
  `recv()` per frame: ~4 us in websockets). `recv()` only delivers what websockets kept (a
  fragmented message, anything after an extension was negotiated). Frames are handled
  synchronously; slow work (REST gap fills, sends) runs in tasks of its own, so reading never
  waits on it.
- Liveness: websockets' keepalive (`ping_interval`/`ping_timeout`) finds a dead TCP connection;
  pings, pongs and close frames are fed to websockets as they are read, between the data frames
  around them, so the server's pings are answered and our pongs seen in the read callback that
  carried them, however long a backlog of data frames waits (handled in slices between reads,
  streaming.adapters.wsframes). A watchdog task checks every `watchdog_s / 4` (at least once a second) whether
  frames arrived; after `watchdog_s` without one it aborts the connection. It also reports when
  the connection has lived `lifetime_s` (`on_expiring`).
- Failure: a network error reports DISCONNECTED with the reason (a connect that fails says why in
  words a person can act on: streaming.adapters.failures); any other exception in the open
  hook or the frame handler is a bug or a frame nobody foresaw: it is logged with its traceback
  (rate-limited), reported as ERROR with its cause, and the connection is reopened. Either way the
  next attempt waits a capped exponential backoff with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ConnectionState, StreamListener
from streaming.adapters.failures import from_exception
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.supervise import LoopFailures, cause
from streaming.adapters.wsframes import FrameHandlingConnection

OnOpen = Callable[[ClientConnection], Awaitable[None]]
OnFrame = Callable[[bytes], object]


class ReconnectingSocket:
    def __init__(self, url: Callable[[], str], listener: StreamListener, failures: LoopFailures, *,
                 connect_bucket: TokenBucket, backoff: Backoff, watchdog_s: float,
                 detail: Callable[[], str] | None = None, lifetime_s: float | None = None,
                 ping_interval: float | None = 20.0, ping_timeout: float | None = 20.0,
                 max_size: int = 2**22, max_queue: int = 256) -> None:
        self.url = url
        self.listener = listener
        self.failures = failures
        self.counts = failures.counts
        self.connect_bucket = connect_bucket
        self.backoff = backoff
        self.watchdog_s = watchdog_s
        self.lifetime_s = lifetime_s
        self.detail = detail or url
        self._connect_options: dict[str, Any] = {"max_size": max_size, "max_queue": max_queue, "open_timeout": 10,
                                 "close_timeout": 2, "ping_interval": ping_interval, "ping_timeout": ping_timeout,
                                 "create_connection": FrameHandlingConnection,
                                 # no permessage-deflate: inflating every small frame costs more CPU
                                 # than the bytes it saves, and it would turn off our own framing
                                 "compression": None}
        self.frames = 0  # an attribute, not a Counter entry: the one count taken per frame
        self.ws: ClientConnection | None = None
        self.live = asyncio.Event()  # set by the first frame of the current connection
        self.opened_at = 0.0
        self._stopped = asyncio.Event()
        self._stale: str | None = None

    @property
    def connected(self) -> bool:
        return self.ws is not None

    async def stop(self) -> None:
        self._stopped.set()
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def run(self, on_open: OnOpen, on_frame: OnFrame, on_close: Callable[[], None] | None = None,
                  on_expiring: Callable[[], None] | None = None) -> None:
        """Connect, receive and reconnect until stop()."""
        while not self._stopped.is_set():
            await self.connect_bucket.acquire()
            if self._stopped.is_set():
                break
            self.listener.on_state(ConnectionState.CONNECTING, self.detail())
            state, reason = await self._connection(on_open, on_frame, on_close, on_expiring)
            if self._stopped.is_set():
                break
            self.counts["reconnects"] += 1
            delay = self.backoff.next_delay()
            self.listener.on_state(state, f"{self.detail()}: {reason}; reconnecting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), delay)

    async def _connection(self, on_open: OnOpen, on_frame: OnFrame, on_close: Callable[[], None] | None,
                          on_expiring: Callable[[], None] | None) -> tuple[ConnectionState, str]:
        self._stale = None
        url = self.url()
        try:
            async with connect(url, **self._connect_options) as ws:
                if self._stopped.is_set():
                    return ConnectionState.DISCONNECTED, "stopped"
                self.ws = ws
                self.opened_at = time.monotonic()
                self.counts["connections_opened"] += 1
                watchdog = asyncio.create_task(self._watch(ws, on_expiring))
                try:
                    await on_open(ws)
                    await self._receive(ws, on_frame)
                finally:
                    watchdog.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watchdog
        except (OSError, TimeoutError, WebSocketException) as exc:
            if self.ws is None:  # the connect itself failed
                exchange = self.failures.context.split(" ", 1)[0]
                return ConnectionState.DISCONNECTED, str(from_exception(exc, exchange, url))
            return ConnectionState.DISCONNECTED, self._stale or cause(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failures.report("receive loop", exc, "reconnecting", notify=False)
            return ConnectionState.ERROR, f"receive loop failed: {cause(exc)}"
        finally:
            self.ws = None
            self.live.clear()
            if on_close is not None:
                try:
                    on_close()
                except Exception as exc:
                    self.failures.report("connection close hook", exc)
        return ConnectionState.DISCONNECTED, "closed by the exchange"

    async def _receive(self, ws: ClientConnection, on_frame: OnFrame) -> None:
        first = self.frames

        def handle(raw: bytes) -> None:
            if self.frames == first:  # the connection's first frame: it is live
                self.live.set()
                self.backoff.reset()
                self.listener.on_state(ConnectionState.CONNECTED, self.detail())
            self.frames += 1
            on_frame(raw)

        recv = ws.recv
        if isinstance(ws, FrameHandlingConnection):
            ws.attach(handle)  # frames are handled as they are read; recv() gets only what websockets kept
        try:
            while True:
                handle(await recv(decode=False))
        except WebSocketException:
            failure = getattr(ws, "failure", None)
            if failure is not None:
                raise failure from None
            raise

    async def _watch(self, ws: ClientConnection, on_expiring: Callable[[], None] | None) -> None:
        period = max(0.02, min(self.watchdog_s / 4, 1.0, (self.lifetime_s or 4.0) / 4))
        seen = self.frames
        last = time.monotonic()
        expiring_told = False
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if self.frames != seen:
                seen, last = self.frames, now
            elif now - last >= self.watchdog_s:
                self.counts["watchdog_timeouts"] += 1
                self._stale = f"no message for {self.watchdog_s:g}s"
                ws.transport.abort()  # the receive loop ends with ConnectionClosedError
                return
            if (on_expiring is not None and not expiring_told and self.lifetime_s is not None
                    and now - self.opened_at >= self.lifetime_s):
                expiring_told = True
                try:
                    on_expiring()
                except Exception as exc:
                    self.failures.report("lifetime rotation", exc)
