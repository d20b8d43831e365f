"""REST gap fills off the receive loop, with a stream's live frames held until its fill is done.

When a stream (a symbol, or a symbol and timeframe) finds closes missing after a reconnect or a
gap, its fill runs as a task of its own (at most `concurrency` REST requests at once), and only
that stream's live items wait, in arrival order, in `held[key]`. Every other stream's frames keep
flowing. When the fill completes (or fails), its candles are applied, then the held items are
replayed in order through the stream's normal path, which may find another gap and hold again.
So per stream, closes stay in open-time order and exactly-once as without the detour.

The same hold serves the warm-up: a stream is `pause`d before its connection opens, its live
items wait while its history comes over REST, and `resume` replays them once the stream knows its
newest stored bar (so the bars in between are found missing and filled from the exchange).

A fill that fails is tried again in the background with a capped backoff, never given up on while
the stream is wanted: a bar we could not get from the exchange is never skipped over (the
pipeline would take the hole for a bucket without trades). `unconfirmed` names the streams whose
fill is failing right now.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import AdapterError, ConnectionState, StreamListener
from streaming.adapters.supervise import LoopFailures
from streaming.models import Candle

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741 - a held item, whatever the stream holds


class GapFills(Generic[K, I]):
    def __init__(self, fetch: Callable[[K, int, int], Awaitable[list[Candle]]],
                 apply: Callable[[K, list[Candle] | None, int], None],
                 replay: Callable[[K, I], None], listener: StreamListener, failures: LoopFailures,
                 concurrency: int = 8, retry: Backoff | None = None) -> None:
        """`fetch(key, start, end)`: the closed candles of [start, end) from REST;
        `apply(key, candles, end)`: hand them to the book (None: the stream is no longer wanted);
        `replay(key, item)`: one held item through the stream's normal path;
        `retry`: the delays between attempts of a failing fill."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self._fetch = fetch
        self._apply = apply
        self._replay = replay
        self.listener = listener
        self.failures = failures
        self.counts: Counter[str] = failures.counts
        self.held: dict[K, deque[I]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._by_key: dict[K, asyncio.Task[None]] = {}
        self._retry = retry or Backoff(1.0, 30.0)
        self.unconfirmed: set[K] = set()  # streams whose fill failed and is being tried again

    def holding(self, key: K) -> bool:
        return key in self.held

    def hold(self, key: K, item: I) -> None:
        self.held[key].append(item)

    def pause(self, key: K) -> None:
        """Hold every live item of `key` from now until `resume(key)` (its warm-up)."""
        self.held.setdefault(key, deque())

    def resume(self, key: K) -> None:
        """Replay what `pause` held, in order, unless a fill of `key` is running (it releases them)."""
        if key not in self._by_key:
            self._release(key)

    def start(self, key: K, start: int, end: int, first: I) -> None:
        """Fill [start, end) of `key` in the background; `first` (the live item that revealed the
        gap) and everything later for `key` waits until then."""
        self.held[key] = deque([first])
        self.counts["gapfill_requests"] += 1
        task = asyncio.create_task(self._fill(key, start, end), name=f"gap fill {key}")
        self._tasks.add(task)
        self._by_key[key] = task
        task.add_done_callback(self._tasks.discard)

    def drop(self, wanted: Callable[[K], bool]) -> None:
        """Stop filling and holding the streams no longer `wanted` (unsubscribed)."""
        for key in [k for k in self.held if not wanted(k)]:
            task = self._by_key.pop(key, None)
            if task is not None:
                task.cancel()
            self.held.pop(key, None)
            self.unconfirmed.discard(key)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.held.clear()
        self._by_key.clear()
        self.unconfirmed.clear()

    async def _fill(self, key: K, start: int, end: int) -> None:
        candles = await self._fetch_until_done(key, start, end)
        if self._by_key.get(key) is asyncio.current_task():
            del self._by_key[key]
        try:
            self._apply(key, candles, end)
        except Exception as exc:
            self.failures.report(f"applying the gap fill of {_name(key)}", exc)
        self._release(key)

    async def _fetch_until_done(self, key: K, start: int, end: int) -> list[Candle]:
        backoff = self._retry.fresh()
        while True:
            try:
                async with self._slots:
                    candles = await self._fetch(key, start, end)
                self.unconfirmed.discard(key)
                return candles
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.counts["gapfill_failures"] += 1
                self.unconfirmed.add(key)
                delay = backoff.next_delay()
                then = f"its live closes wait; trying again in {delay:.1f}s"
                if isinstance(exc, AdapterError):
                    detail = f"gap fill of {_name(key)} failed: {exc}; {then}"
                    self.listener.on_state(ConnectionState.ERROR, detail[:300])
                else:
                    self.failures.report(f"gap fill of {_name(key)}", exc, then)
            self.counts["gapfill_retries"] += 1
            await asyncio.sleep(delay)

    def _release(self, key: K) -> None:
        held = self.held.pop(key, None)
        while held:
            item = held.popleft()
            try:
                self._replay(key, item)
            except Exception as exc:
                self.failures.report(f"replaying {_name(key)} after its gap fill", exc, "frame skipped")
            again = self.held.get(key)
            if again is not None:  # the replay found another gap: the rest wait behind that fill
                again.extend(held)
                return


def _name(key: object) -> str:
    return " ".join(key) if isinstance(key, tuple) else str(key)
