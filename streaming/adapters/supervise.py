"""No loop of an adapter ends silently: a failure is logged (rate-limited, with its traceback),
reported to the listener as ERROR with its cause, and the loop is restarted after a backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ConnectionState, StreamListener

log = logging.getLogger(__name__)


def cause(exc: BaseException) -> str:
    """One line naming an exception, short enough for a status field."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


class LoopFailures:
    """Counts failures of one stream's loops; logs at most one traceback per loop every interval."""

    def __init__(self, context: str, listener: StreamListener, counts: Counter[str],
                 interval_s: float = 30.0) -> None:
        self.context = context
        self.listener = listener
        self.counts = counts
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def report(self, loop: str, exc: BaseException, then: str = "", notify: bool = True) -> None:
        """Count, log (rate-limited) and report one failure of `loop` (as ERROR to the listener
        unless `notify` is False: the caller reports it); `then` says what happens next."""
        self.counts["loop_errors"] += 1
        now = time.monotonic()
        last = self._last.get(loop)
        if last is None or now - last >= self.interval_s:
            self._last[loop] = now
            held = self._held.pop(loop, 0)
            log.error("%s: %s failed%s%s", self.context, loop, f" ({held} more since the last report)" if held else "",
                      f"; {then}" if then else "", exc_info=exc)
        else:
            self._held[loop] += 1
        if not notify:
            return
        detail = f"{self.context}: {loop} failed: {cause(exc)}" + (f"; {then}" if then else "")
        with contextlib.suppress(Exception):
            self.listener.on_state(ConnectionState.ERROR, detail[:300])


async def supervised(loop: str, body: Callable[[], Awaitable[None]], failures: LoopFailures, backoff: Backoff,
                     stopped: asyncio.Event) -> None:
    """Run `body` until `stopped`; whenever it raises, report it and run it again after a backoff."""
    while not stopped.is_set():
        try:
            await body()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delay = backoff.next_delay()
            failures.report(loop, exc, f"restarting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopped.wait(), delay)
