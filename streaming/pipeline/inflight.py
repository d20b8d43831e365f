"""InFlight: the run loop's script calls in flight, oldest first.

While one batch's CLOSE_BATCH call runs in Redis the next batch is prepared, up to
`config.pipeline_depth` calls at once. Calls in flight never share a stream (`busy`), so each
stream's closes still reach Redis in order. A call that fails with a Redis or network error puts
its queue entries back at the front of the listener's queue, oldest first, ahead of everything
queued after them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, NamedTuple

from redis.exceptions import RedisError

from streaming.models import CandleUpdate
from streaming.pipeline.close_script import CloseOutcome
from streaming.pipeline.staging import Batch, Stream

# a listener queue entry: (receipt time in ns, update)
Entry = tuple[int, CandleUpdate]


class _Call(NamedTuple):
    batch: Batch
    entries: list[Entry]  # the queue entries the batch came from, requeued if its call fails
    task: asyncio.Task[list[CloseOutcome]]


class InFlight:
    """Script calls in flight. `settled(batch, outcomes)` is called for each call that finished,
    in order; `lost(batch)` for each whose batch may not have reached Redis; `redis_failed(exc)`
    for each Redis or network error."""

    def __init__(self, queue: deque[Entry], settled: Callable[[Batch, list[CloseOutcome]], object],
                 lost: Callable[[Batch], None], redis_failed: Callable[[BaseException], None]) -> None:
        self._queue = queue
        self._settled = settled
        self._lost = lost
        self._redis_failed = redis_failed
        self._calls: deque[_Call] = deque()
        self._busy: dict[Stream, int] = {}  # closes per stream in calls in flight

    def __len__(self) -> int:
        return len(self._calls)

    @property
    def oldest_done(self) -> bool:
        return bool(self._calls) and self._calls[0].task.done()

    def busy(self, streams: Iterable[Stream]) -> bool:
        """Whether any of `streams` has a close in a call in flight."""
        busy = self._busy
        return bool(busy) and any(s in busy for s in streams)

    def start(self, batch: Batch, entries: list[Entry], call: Coroutine[Any, Any, list[CloseOutcome]],
              wake: Callable[[], None]) -> None:
        """Start a batch's script call without waiting for it; `wake` runs when it finishes."""
        busy = self._busy
        for s in batch.staged:
            k = (s.symbol, s.timeframe)
            busy[k] = busy.get(k, 0) + 1
        task = asyncio.ensure_future(call)
        task.add_done_callback(lambda _: wake())
        self._calls.append(_Call(batch, entries, task))

    async def settle(self, keep: int = 0, requeue_after: list[Entry] | None = None) -> int:
        """Finish calls (oldest first) until at most `keep` remain; returns how many failed.
        Failed batches go back to the front of the queue, oldest first, followed by
        `requeue_after` if any failed."""
        calls = self._calls
        failed: list[_Call] = []
        while len(calls) > keep or (failed and calls):
            call = calls[0]
            outcomes: list[CloseOutcome] | None
            try:
                outcomes = await call.task
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                failed.append(call)
                outcomes = None
            except BaseException:
                calls.popleft()
                self._release(call.batch)
                self._lost(call.batch)
                raise
            calls.popleft()
            self._release(call.batch)
            if outcomes is not None:
                self._settled(call.batch, outcomes)
        if failed:
            for call in failed:
                self._lost(call.batch)
            back = [e for c in failed for e in c.entries] + (requeue_after or [])
            self._queue.extendleft(reversed(back))
        return len(failed)

    def _release(self, batch: Batch) -> None:
        busy = self._busy
        for s in batch.staged:
            k = (s.symbol, s.timeframe)
            n = busy[k]
            if n <= 1:
                del busy[k]
            else:
                busy[k] = n - 1
