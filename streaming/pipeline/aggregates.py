"""Aggregation in CandlePipeline (core.py), for exchanges without native candles of every
timeframe (Coinbase): each 5m close feeds the symbol's TimeframeAggregator, the aggregate bars it
closes are staged in the same batch, buckets whose last 5m never came are flushed on a timer, and
a 5m changed inside a closed bucket corrects that aggregate bar (never a second close event)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from streaming.aggregation import AggregationError, aggregate
from streaming.models import CandleUpdate
from streaming.pipeline.config import BASE
from streaming.pipeline.staging import Batch
from streaming.timeframes import TIMEFRAME_MS


class Aggregates:
    """CandlePipeline's aggregation handling."""

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            try:
                await self.flush_aggregates(self.config.clock_ms() - self.config.aggregate_grace_ms)
            except (RedisError, OSError) as exc:
                self._log.warning("flush", "aggregate flush failed (%s)", exc)

    async def flush_aggregates(self, now_ms: int) -> int:
        """Close aggregate buckets that ended at or before now_ms (symbols whose last 5m never came)."""
        async with self._lock:
            await self._settle()
            bars = [(sym, tf, bar) for sym, agg in self._aggs.items() if sym in self._pools
                    for tf, bar in agg.flush(now_ms) if tf in self.timeframes]
            if not bars:
                return 0
            await self._load_streams(list({(s, tf) for s, tf, _ in bars if (s, tf) not in self._states}), [])
            batch = Batch()
            for sym, tf, bar in bars:
                self.counters["aggregated"] += 1
                self._stage(batch, sym, tf, bar, "aggregate", self._pools[sym])
                if self.reconciler is not None:
                    self.reconciler.schedule(sym, tf, bar)
            return await self._execute(batch)

    def _stage_all(self, batch: Batch, items: Sequence[CandleUpdate]) -> list[tuple[str, Any]]:
        """Stage every close of `items` (and the aggregate bars they close); returns the aggregate
        corrections to apply once the batch is stored."""
        corrections: list[tuple[str, Any]] = []
        pools = self._pools
        stage = self._stage
        aggregated = self.aggregated
        for u in items:
            pool = pools[u.symbol]
            stage(batch, u.symbol, u.timeframe, u.candle, u.source, pool)
            if aggregated and u.timeframe == BASE:
                agg = self._aggs[u.symbol]
                try:
                    result = agg.process(u.candle)
                except AggregationError as exc:
                    self.counters["skipped_aggregation"] += 1
                    self._log.warning("aggregation", "aggregation of %s failed: %s", u.symbol, exc)
                    continue
                for tf, bar in result.closed:
                    if tf in self.timeframes:
                        self.counters["aggregated"] += 1
                        stage(batch, u.symbol, tf, bar, "aggregate", pool)
                        if self.reconciler is not None:
                            self.reconciler.schedule(u.symbol, tf, bar)
                corrections.extend((u.symbol, c) for c in result.corrections if c.timeframe in self.timeframes)
        return corrections

    async def _correct(self, corrections: list[tuple[str, Any]]) -> None:
        if not corrections:
            return
        # the open bucket of each corrected (symbol, timeframe), read before any aggregator is dropped
        open_bucket: dict[tuple[str, str], int] = {}
        for sym, corr in corrections:
            agg = self._aggs.get(sym)
            forming = agg.forming(corr.timeframe) if agg is not None else None
            if forming is not None:
                open_bucket[(sym, corr.timeframe)] = forming.timestamp
        for sym, tf, bucket in dict.fromkeys((s, c.timeframe, c.bucket) for s, c in corrections):
            if open_bucket.get((sym, tf)) == bucket:
                # an earlier 5m of a still-open bucket changed: rebuild the aggregator from the
                # store (which has the new 5m) when the next 5m arrives
                self._aggs.pop(sym, None)
            else:
                await self._correct_aggregate(sym, tf, bucket)


    async def _correct_aggregate(self, symbol: str, tf: str, bucket: int) -> None:
        """A 5m bar changed inside an already-closed aggregate bucket: rebuild that bar from the
        stored 5m and replace it. Never a second close event."""
        pool = self._pools.get(symbol)
        if pool is None:
            return
        size = TIMEFRAME_MS[tf]
        five = await self.store.read_range(self.exchange_id, symbol, BASE, bucket, bucket + size, pool.user_ids)
        bars = aggregate(five, tf)
        changed = bars and bars[0].timestamp == bucket and await self.store.write_many(
            self.exchange_id, symbol, tf, bars[:1], pool.user_ids)
        if changed:
            self.counters["aggregate_corrections"] += 1
            self._states.pop((symbol, tf), None)
