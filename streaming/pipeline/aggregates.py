"""Aggregation: the timeframes an exchange does not stream natively (Coinbase streams only 5m),
built by the pipeline from closed BASE (5m) candles.

Each BASE close feeds its symbol's TimeframeAggregator (held by StreamStates); the bars it closes
are staged in the same batch as the close. Buckets whose last 5m never came are closed by the
clock (`due`), and a 5m changed inside an already closed bucket corrects that aggregate bar in
the store (`correct`): never a second close event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from streaming.aggregation import AggregateResult, AggregationError, Correction, aggregate
from streaming.models import Candle
from streaming.pipeline.config import BASE
from streaming.pipeline.streams import StreamStates
from streaming.ratelog import RateLimitedLog
from streaming.store.candles import CandleStore
from streaming.store.codec import BadCandle
from streaming.timeframes import TIMEFRAME_MS


class Aggregation:
    """Per-symbol aggregation of one exchange's BASE closes into `timeframes`."""

    def __init__(self, states: StreamStates, store: CandleStore, exchange_id: int, timeframes: Sequence[str],
                 counters: Counter[str], log: RateLimitedLog) -> None:
        self.states = states
        self.store = store
        self.exchange_id = exchange_id
        self.timeframes = tuple(timeframes)
        self.counters = counters
        self._log = log

    def advance(self, symbol: str, candle: Candle) -> AggregateResult | None:
        """Feed one BASE close to the symbol's aggregator: the bars it closed and the corrections
        it asks for, or None if the aggregator refused the candle (counted, logged)."""
        try:
            return self.states.aggregator(symbol).process(candle)
        except AggregationError as exc:
            self.counters["skipped_aggregation"] += 1
            self._log.warning("aggregation", "aggregation of %s failed: %s", symbol, exc)
            return None

    def due(self, now_ms: int, waiting: Callable[[str], bool] | None = None) -> list[tuple[str, str, Candle]]:
        """Close every open bucket that ended at or before now_ms (symbols whose last 5m never
        came): (symbol, timeframe, bar), to be staged like any close. A symbol whose 5m bars are
        `waiting` (held behind a REST fill by the live stream) keeps its buckets open: its last
        5m may still come."""
        return [(sym, tf, bar) for sym, agg in self.states.aggregators()
                if waiting is None or not waiting(sym) for tf, bar in agg.flush(now_ms)]

    async def correct(self, corrections: Sequence[tuple[str, Correction]]) -> None:
        """Apply the corrections of a batch once it is stored."""
        if not corrections:
            return
        states = self.states
        # the open bucket of each corrected (symbol, timeframe), read before any aggregator is dropped
        open_bucket: dict[tuple[str, str], int] = {}
        for sym, corr in corrections:
            agg = states.peek_aggregator(sym)
            forming = agg.forming(corr.timeframe) if agg is not None else None
            if forming is not None:
                open_bucket[(sym, corr.timeframe)] = forming.timestamp
        for sym, tf, bucket in dict.fromkeys((s, c.timeframe, c.bucket) for s, c in corrections):
            if open_bucket.get((sym, tf)) == bucket:
                # an earlier 5m of a still-open bucket changed: rebuild the aggregator from the
                # store (which has the new 5m) when the next 5m arrives
                states.invalidate_aggregates(sym)
            else:
                await self._rebuild_closed(sym, tf, bucket)

    async def _rebuild_closed(self, symbol: str, tf: str, bucket: int) -> None:
        """A 5m bar changed inside an already closed bucket: rebuild that bar from the stored 5m
        and replace it. Never a second close event."""
        pool = self.states.pool(symbol)
        if pool is None:
            return
        size = TIMEFRAME_MS[tf]
        five = await self.store.read_range(self.exchange_id, symbol, BASE, bucket, bucket + size, pool.user_ids)
        try:
            bars = aggregate(five, tf)
            changed = bool(bars) and bars[0].timestamp == bucket and await self.store.write_many(
                self.exchange_id, symbol, tf, bars[:1], pool.user_ids) > 0
        except (AggregationError, BadCandle) as exc:  # stored 5m that cannot be summed: leave the bar
            self.counters["skipped_aggregate_correction"] += 1
            self._log.warning("aggregate-correction", "correction of %s %s %d failed: %s", symbol, tf, bucket, exc)
            return
        if changed:
            self.counters["aggregate_corrections"] += 1
            self.states.invalidate((symbol, tf))
