"""CandlePipeline: closed candle -> store -> close event (exactly once) -> MACD-V -> alerts.

The imperative shell around the pure parts (StreamState, TimeframeAggregator, alert rules).
Closes are handled in batches: one pipelined round trip loads the state of streams seen for
the first time, one call of the atomic script streaming.store.scripts.CLOSE_BATCH handles every
close of the batch. Per close it stores the candle and publishes the close event, the indicator
value and the alerts only if the bar is newer than the stream's marker, so duplicates,
reconnects, backfills and restarts never publish a bar twice. MACD-V and the alert rules run
here, before the script, on in-memory state that is rebuilt from the store whenever Redis
disagrees with it.

The class is assembled from one mixin per concern, each in its own module: runloop (batches
in flight), staging (close specs, the script call, its results), aggregates (5m -> larger
timeframes), loading (state from the store) and backfill (warm-up). This module holds the
constructor, the universe, validation, `process` and introspection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from streaming import keys
from streaming.adapters.base import ConnectionState, ExchangeAdapter
from streaming.aggregation import TimeframeAggregator
from streaming.models import Candle, CandleUpdate
from streaming.pipeline.aggregates import Aggregates
from streaming.pipeline.backfill import Backfill
from streaming.pipeline.config import BASE, PipelineConfig, SymbolPool, normalize_pools
from streaming.pipeline.listener import QueueListener
from streaming.pipeline.loading import StateLoading
from streaming.pipeline.reconcile import Reconciler
from streaming.pipeline.runloop import RunLoop
from streaming.pipeline.staging import Batch, Staging
from streaming.pipeline.state import StreamState
from streaming.ratelog import RateLimitedLog
from streaming.store import scripts
from streaming.store.candles import CandleStore
from streaming.store.codec import BadCandle, check_candle
from streaming.timeframes import TIMEFRAME_MS, TIMEFRAMES, timeframe_ms

log = logging.getLogger(__name__)


class CandlePipeline(RunLoop, Staging, Aggregates, StateLoading, Backfill):
    """The live pipeline of one exchange. Hand `.listener` to `adapter.live(...)`, then `await run()`."""

    def __init__(
        self,
        redis: aioredis.Redis,
        exchange_id: int,
        exchange_name: str,
        *,
        symbol_pools: Mapping[str, SymbolPool] | Iterable[str],
        timeframes: Sequence[str] = TIMEFRAMES,
        config: PipelineConfig | None = None,
        adapter: ExchangeAdapter | None = None,
        on_state: Callable[[ConnectionState, str | None], None] | None = None,
        on_rejected: Callable[[list[str], str], None] | None = None,
    ) -> None:
        if isinstance(exchange_id, bool) or not isinstance(exchange_id, int):
            raise ValueError(f"exchange_id must be an integer, got {exchange_id!r}")
        self.config = config or PipelineConfig()
        for tf in timeframes:
            timeframe_ms(tf)  # UnknownTimeframe names the bad one
        self.redis = redis
        self.exchange_id = exchange_id
        self.exchange_name = exchange_name
        self.timeframes = tuple(timeframes)
        self.store = CandleStore(redis, self.config.store_limits)
        self.listener = QueueListener(on_state, on_rejected)
        self.adapter = adapter
        self.counters: Counter[str] = Counter()
        agg = self.config.aggregate if self.config.aggregate is not None else exchange_name == "coinbase"
        self.aggregated = tuple(tf for tf in self.timeframes if tf != BASE) if agg and BASE in self.timeframes else ()
        self._pools = normalize_pools(symbol_pools)
        self._states: dict[tuple[str, str], StreamState] = {}
        # per stream: the static head of its close spec (keys, ttl, channel), built once
        self._heads: dict[tuple[str, str], tuple[list[Any], int, str]] = {}
        # run loop: batches whose script call is in flight (oldest first) and their streams
        self._inflight: deque[Batch] = deque()
        self._busy: Counter[tuple[str, str]] = Counter()
        self._aggs: dict[str, TimeframeAggregator] = {}
        self._close_batch = redis.register_script(scripts.CLOSE_BATCH)
        self._lock = asyncio.Lock()
        self._closed = False
        self._log = RateLimitedLog(log)
        self._alerts_channel = keys.alerts_channel(exchange_id)
        self.reconciler: Reconciler | None = None
        wants = self.config.reconcile if self.config.reconcile is not None else adapter is not None
        if wants and self.aggregated:
            if adapter is None:
                raise ValueError("reconcile=True needs the adapter (its REST candles are the reference)")
            self.reconciler = Reconciler(adapter, self.store, exchange_id, self._pool_of, self._invalidate,
                                         self.config, self.counters)
        # called with (exchange_id, symbol, timeframe, candle) after a close was published (tests, bench)
        self.on_published: Callable[[str, str, Candle], None] | None = None

    # --- universe ------------------------------------------------------------------------------

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._pools)

    def set_pools(self, symbol_pools: Mapping[str, SymbolPool] | Iterable[str]) -> None:
        """Replace the universe; state of symbols that left is dropped (their Redis data stays)."""
        pools = normalize_pools(symbol_pools)
        changed = {s for s in self._pools if pools.get(s) != self._pools[s]}
        self._pools = pools
        for key in [k for k in self._states if k[0] in changed]:
            del self._states[key]
        for key in [k for k in self._heads if k[0] in changed]:
            del self._heads[key]
        for sym in [s for s in self._aggs if s in changed]:
            del self._aggs[sym]

    def _pool_of(self, symbol: str) -> SymbolPool | None:
        return self._pools.get(symbol)

    async def _invalidate(self, symbol: str, timeframe: str) -> None:
        async with self._lock:
            await self._settle()
            self._states.pop((symbol, timeframe), None)

    # --- validation, process ----------------------------------------------------------------------

    def _valid(self, u: CandleUpdate) -> bool:
        reason = None
        if not isinstance(u, CandleUpdate):
            reason = "not_an_update"
        elif u.symbol not in self._pools:
            reason = "unknown_symbol"
        elif u.timeframe not in self.timeframes:
            reason = "unknown_timeframe"
        elif self.aggregated and u.timeframe in self.aggregated:
            reason = "timeframe_aggregated_here"  # one source per stream: ours, from 5m
        else:
            try:
                check_candle(u.candle)
                if u.candle.timestamp % TIMEFRAME_MS[u.timeframe]:
                    reason = "misaligned"
            except BadCandle:
                reason = "bad_candle"
        if reason is None:
            return True
        self.counters[f"skipped_{reason}"] += 1
        self._log.warning(reason, "pipeline %s: skipped a close (%s): %s %s", self.exchange_name, reason,
                          getattr(u, "symbol", "?"), getattr(u, "timeframe", "?"))
        return False

    async def process(self, updates: Sequence[CandleUpdate]) -> int:
        """Handle closed candle updates (oldest first per stream); returns how many closes were published."""
        async with self._lock:
            await self._settle()
            items = [u for u in updates if self._valid(u)]
            if not items:
                return 0
            self.counters["closes_received"] += len(items)
            await self._load(items)
            batch = Batch()
            corrections = self._stage_all(batch, items)
            published = await self._execute(batch)
            await self._correct(corrections)
            return published
    # --- introspection -------------------------------------------------------------------------

    def state(self, symbol: str, timeframe: str) -> StreamState | None:
        return self._states.get((symbol, timeframe))

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.counters)
        out.update(queued=len(self.listener.queue), streams=len(self._states), symbols=len(self._pools),
                   forming_seen=self.listener.forming, listener_invalid=self.listener.invalid,
                   rejected=dict(self.listener.rejected))
        if self.reconciler is not None:
            out["reconcile_pending"] = self.reconciler.pending
        return out
