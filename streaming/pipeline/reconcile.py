"""Reconciliation of aggregated closes against the exchange's own REST candles (optional: it
costs one REST call per aggregated bar). Runs off the hot path, after a delay, with bounded
concurrency; a difference replaces the stored bar and is counted, and never publishes again."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable

from streaming.adapters.base import ExchangeAdapter
from streaming.models import Candle
from streaming.pipeline.config import PipelineConfig, SymbolPool
from streaming.store.candles import CandleStore
from streaming.timeframes import timeframe_ms

log = logging.getLogger(__name__)


def same_bar(a: Candle, b: Candle, rel: float = 1e-9) -> bool:
    return a.timestamp == b.timestamp and all(
        math.isclose(x, y, rel_tol=rel, abs_tol=1e-12)
        for x, y in ((a.open, b.open), (a.high, b.high), (a.low, b.low), (a.close, b.close))
    ) and math.isclose(a.volume, b.volume, rel_tol=1e-6, abs_tol=1e-9)


class Reconciler:
    def __init__(self, adapter: ExchangeAdapter, store: CandleStore, exchange_id: int,
                 pool_of: Callable[[str], SymbolPool | None],
                 invalidate: Callable[[str, str], Awaitable[None]],
                 config: PipelineConfig, counters: Counter[str]) -> None:
        self.adapter = adapter
        self.store = store
        self.exchange_id = exchange_id
        self.pool_of = pool_of
        self.invalidate = invalidate
        self.config = config
        self.counters = counters
        self._sem = asyncio.Semaphore(config.reconcile_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def schedule(self, symbol: str, timeframe: str, bar: Candle) -> None:
        if len(self._tasks) >= self.config.reconcile_queue_max:
            self.counters["reconcile_dropped"] += 1
            return
        task = asyncio.get_running_loop().create_task(self._check(symbol, timeframe, bar))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait(self) -> None:
        """Until every scheduled check finished (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _check(self, symbol: str, tf: str, bar: Candle) -> None:
        try:
            await asyncio.sleep(self.config.reconcile_delay_s)
            async with self._sem:
                rest = await self.adapter.fetch_candles(symbol, tf, bar.timestamp, bar.timestamp + timeframe_ms(tf))
            self.counters["reconcile_checked"] += 1
            theirs = next((c for c in rest if c.timestamp == bar.timestamp), None)
            if theirs is None:
                self.counters["reconcile_missing"] += 1
                return
            if same_bar(bar, theirs):
                return
            pool = self.pool_of(symbol)
            if pool is None:
                return
            # the exchange's bar is the truth: replace ours (no event: the marker is past it)
            await self.store.write_many(self.exchange_id, symbol, tf, [theirs], pool.user_ids)
            self.counters["reconcile_corrected"] += 1
            await self.invalidate(symbol, tf)
            log.info("reconciled %s %s %d with the exchange's REST candle", symbol, tf, bar.timestamp)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.counters["reconcile_failed"] += 1
            log.warning("reconcile %s %s failed: %s", symbol, tf, exc)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
