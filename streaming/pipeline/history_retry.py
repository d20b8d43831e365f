"""Missing history: the streams whose warm-up failed, fetched again in the background.

A stream whose warm-up request failed (429s past the client's budget, 5xx, a timeout) goes live
without its history: its bars are published from the first live close on, and its MACD-V would
warm up from live bars only. Each such stream is tried again here, at most `concurrency` at once
(the adapter's own rate limiter paces the requests), with a capped backoff that honours a 429's
Retry-After, until its history arrives; then `install` stores it as already published history and
rebuilds MACD-V and the alert baseline from the store. A cause that retrying cannot fix (the
exchange refuses this country or this client) is not retried: the stream stays reported as
missing. `missing` names every stream without its history, for the status, stats and logs.

`live_from` is the open time from which the live side owns a stream's bars (each published as a
close by the live stream): the history installed stops before the first bar the live side stored
at or after it, so no bar that has or will get a close event is written as history.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AuthError, RateLimitedError, UnknownSymbolError
from streaming.models import Candle
from streaming.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

Stream = tuple[str, str]  # (symbol, timeframe)


def permanent(exc: BaseException) -> bool:
    """Whether retrying cannot fix `exc`: an unknown symbol, bad credentials, or an exchange that
    refuses us (HTTP 451, a public request's 401/403: the REST client's `failure.permanent`)."""
    if isinstance(exc, UnknownSymbolError | AuthError):
        return True
    return bool(getattr(getattr(exc, "failure", None), "permanent", False))


@dataclass
class Missing:
    live_from: int  # open time from which the live side publishes this stream's bars
    error: str  # why the last attempt failed
    retrying: bool = True  # False: a cause retrying cannot fix


class HistoryRetry:
    def __init__(self, fetch: Callable[[str, str, int], Awaitable[list[Candle]]],
                 install: Callable[[str, str, list[Candle], int], Awaitable[int]], counters: Counter[str], *,
                 concurrency: int = 2, backoff: Backoff | None = None, name: str = "") -> None:
        """`fetch(symbol, tf, live_from)`: the stream's history before `live_from` from REST (raises
        on failure; as deep as the warm-up's, so a restart finds the store warm);
        `install(symbol, tf, candles, live_from)`: store it (returns how many changed the store)."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._fetch = fetch
        self._install = install
        self.counters = counters
        self._slots = asyncio.Semaphore(concurrency)
        self._backoff = backoff or Backoff(2.0, 60.0)
        self.name = name
        self.missing: dict[Stream, Missing] = {}
        self._tasks: dict[Stream, asyncio.Task[None]] = {}
        self._log = RateLimitedLog(log, 30.0)

    @property
    def count(self) -> int:
        return len(self.missing)

    def add(self, symbol: str, tf: str, live_from: int, exc: BaseException) -> None:
        """The warm-up of (symbol, tf) failed with `exc`: fetch it again in the background, unless
        retrying cannot fix the cause."""
        stream = (symbol, tf)
        error = f"{type(exc).__name__}: {exc}"[:300]
        retry = not permanent(exc)
        self.missing[stream] = Missing(live_from, error, retry)
        if retry:
            old = self._tasks.pop(stream, None)
            if old is not None:
                old.cancel()
            self._tasks[stream] = asyncio.create_task(self._retry(stream), name=f"history {symbol} {tf}")
            log.warning("%s: history of %s %s missing (%s); fetching it again in the background",
                        self.name, symbol, tf, error)
        else:
            self.counters["history_not_retried"] += 1
            log.warning("%s: history of %s %s missing and not retried: %s", self.name, symbol, tf, error)

    def drop(self, wanted: Callable[[str], bool]) -> None:
        """Forget the streams of symbols no longer `wanted` (unsubscribed)."""
        gone = [s for s in self.missing if not wanted(s[0])]
        for stream in gone:
            del self.missing[stream]
            task = self._tasks.pop(stream, None)
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def _retry(self, stream: Stream) -> None:
        symbol, tf = stream
        backoff = self._backoff.fresh()
        try:
            while True:
                delay = backoff.next_delay()
                await asyncio.sleep(delay)
                self.counters["history_retries"] += 1
                try:
                    async with self._slots:
                        wanted = self.missing.get(stream)
                        if wanted is None:
                            return
                        candles = await self._fetch(symbol, tf, wanted.live_from)
                        entry = self.missing.get(stream)
                        if entry is None:
                            return
                        written = await self._install(symbol, tf, candles, entry.live_from)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.counters["history_failures"] += 1
                    entry = self.missing.get(stream)
                    if entry is None:
                        return
                    entry.error = f"{type(exc).__name__}: {exc}"[:300]
                    if permanent(exc):
                        entry.retrying = False
                        log.warning("%s: history of %s %s not retried any more: %s", self.name, symbol, tf,
                                    entry.error)
                        return
                    if isinstance(exc, RateLimitedError) and exc.retry_after:
                        backoff.reset()  # the exchange said when: wait that long, not the backoff
                        await asyncio.sleep(exc.retry_after)
                    self._log.warning("history-failed", "%s: history of %s %s still missing (%s); %d streams "
                                      "missing, trying again", self.name, symbol, tf, entry.error, self.count)
                    continue
                self.counters["history_filled"] += 1
                self.counters["history_candles"] += written
                del self.missing[stream]
                log.info("%s: history of %s %s filled (%d candles written); %d streams still missing",
                         self.name, symbol, tf, written, self.count)
                return
        finally:
            if self._tasks.get(stream) is asyncio.current_task():
                del self._tasks[stream]
