"""Keeping what a session publishes about itself true, at every heartbeat (`beat`).

"connected" only while frames arrive: none for longer than the stream's watchdog (plus a few
seconds: the socket's own watchdog reports first, as a rule) makes it `disconnected`. A live
stream or candle pipeline task that ends on its own is reported as `error` with its cause and
started again after a backoff (1 s, 2 s, ... MAX_RESTART_DELAY_S). Frames arriving again after a
loop failed on an open connection make it `connected` again, `last_error` kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from streaming.adapters.base import ConnectionState
from streaming.worker.publisher import StatusPublisher
from streaming.worker.universe import Pools

log = logging.getLogger("streaming.worker.session")

DEFAULT_WATCHDOG_S = 60.0  # when the stream does not say how long it waits for a frame
MAX_RESTART_DELAY_S = 30.0

_trim: Callable[[int], int] | None = None


def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc's malloc_trim; a no-op elsewhere).

    A burst of closes allocates buffers that are freed again, interleaved with the streams'
    long-lived state; glibc keeps those pages until trimmed. ~5 us (the first call loads ctypes,
    ~2 ms once)."""
    global _trim
    if _trim is None:
        import ctypes

        try:
            _trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _trim = lambda pad: 0  # noqa: E731  (not glibc)
    _trim(0)


class SessionHealth:
    """Mixed into ExchangeSession: these are its attributes."""

    name: str
    pools: Pools
    publisher: StatusPublisher
    stream: Any
    pipeline: Any
    started: bool
    last_frame: float | None
    _stopping: bool
    _frames_seen: int | None
    _frames_at_failure: int | None
    _restarts: int
    _restart_at: dict[str, float]
    _stream_task: asyncio.Task | None
    _pipeline_task: asyncio.Task | None
    _connected: asyncio.Event

    @property
    def state(self) -> str:
        return self.publisher.state.value

    def _start_pipeline(self) -> None:
        raise NotImplementedError

    async def _open_stream(self, symbols: list[str]) -> None:
        raise NotImplementedError

    async def beat(self) -> None:
        """Keep the published state true (see the module's docstring) and copy the time of the
        last frame into the status hash: how fresh the connection is."""
        frames = self._frame_count()  # heartbeat frames never reach the listener: count them all
        if frames is not None and frames != self._frames_seen:
            self._frames_seen = frames
            self.last_frame = time.time()
            release_free_memory()  # what the frames since the last beat freed
        if self.started and not self._stopping:
            await self._look_after_tasks()
            await self._check_frames(frames)
            await self._check_stale_count()
            await self._check_history_missing()
        if self.last_frame is not None and self.state == ConnectionState.CONNECTED.value:
            await self.publisher.heartbeat(self.last_frame)
        else:
            # not connected ourselves: a connected peer that died must still stop counting
            await self.publisher.refresh()

    def _frame_count(self) -> int | None:
        if self.stream is None:
            return None
        with contextlib.suppress(Exception):
            frames = self.stream.stats().get("frames")
            if isinstance(frames, int):
                return frames
        return None

    async def _check_stale_count(self) -> None:
        """The status's stale-stream count follows the live stream (a restarted stream starts afresh)."""
        count = self.publisher.stale_count
        with contextlib.suppress(Exception):
            count = len(self.stream.stale_streams()) if self.stream is not None else 0
        if count != self.publisher.stale_count:
            await self.publisher.set_stale_count(count)

    async def _check_history_missing(self) -> None:
        """The status's count of streams missing their history follows the pipeline's retries."""
        count = self.pipeline.history.missing if self.pipeline is not None else 0
        if count != self.publisher.history_missing:
            await self.publisher.set_history_missing(count)

    def watchdog_s(self) -> float:
        """How long the stream waits for a frame before it gives a connection up."""
        for owner in (self.stream, getattr(self.stream, "socket", None)):
            value = getattr(owner, "watchdog_s", None)
            if isinstance(value, int | float) and value > 0:
                return float(value)
        return DEFAULT_WATCHDOG_S

    async def _check_frames(self, frames: int | None) -> None:
        extra = {"symbols": len(self.pools)}
        state = self.publisher.state
        if state == ConnectionState.CONNECTED and self.last_frame is not None:
            silent = time.time() - self.last_frame
            limit = self.watchdog_s() + 5.0  # the socket's own watchdog reports first, as a rule
            if silent > limit:
                self._frames_at_failure = frames
                await self.publisher.set_state(
                    ConnectionState.DISCONNECTED, f"no frame from {self.name} for {silent:.0f}s (its watchdog "
                    f"waits {self.watchdog_s():g}s): not connected; reconnecting", extra)
        elif (state in (ConnectionState.ERROR, ConnectionState.DISCONNECTED) and frames is not None
              and self._frames_at_failure is not None and frames > self._frames_at_failure
              and not self._restart_at):
            self._frames_at_failure = None  # a loop failed, the connection kept streaming
            await self.publisher.set_state(ConnectionState.CONNECTED, "frames arrive again", extra, resumed=True)

    async def _look_after_tasks(self) -> None:
        """A live stream or pipeline task that ended on its own: report it, start it again later."""
        await self._task_ended("live stream", self._stream_task, self._restart_stream)
        await self._task_ended("candle pipeline", self._pipeline_task, self._start_pipeline)

    async def _task_ended(self, what: str, task: asyncio.Task | None, restart: Callable[[], Any]) -> None:
        if task is None or not task.done():
            return
        now = time.monotonic()
        due = self._restart_at.get(what)
        if due is None:
            exc = None if task.cancelled() else task.exception()
            cause = _first_line(exc) if exc is not None else "it returned"
            delay = min(MAX_RESTART_DELAY_S, 2.0 ** self._restarts)
            self._restarts += 1
            self._restart_at[what] = now + delay
            log.error("%s: the %s stopped (%s); starting it again in %.0fs", self.name, what, cause, delay,
                      exc_info=exc)
            await self.publisher.set_state(ConnectionState.ERROR, f"the {what} stopped: {cause}; starting it "
                                           f"again in {delay:.0f}s", {"symbols": len(self.pools)})
        elif now >= due:
            del self._restart_at[what]
            result = restart()
            if asyncio.iscoroutine(result):
                await result

    async def _restart_stream(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(Exception):
                await self.stream.close()
        self._connected.clear()
        self._frames_at_failure = None
        await self._open_stream(sorted(self.pools))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]
