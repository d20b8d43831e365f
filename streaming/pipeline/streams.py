"""StreamStates: the pipeline's in-memory state of its streams, loaded from Redis and kept
coherent with it.

Memory holds, per stream (symbol, timeframe), the StreamState (MACD-V, last candle, alert rules'
state, and the stream's encoded StreamHead: one record, one dict entry); per aggregated symbol,
its TimeframeAggregator. All of it is a cache of what Redis holds: a stream seen for the first
time is rebuilt from the stored candles and alert state (all streams of a batch in one pipelined
round trip). The coherence rule lives here and only here: wherever memory may have run ahead of
Redis, or Redis changed under it, the affected entries are dropped and rebuilt from the store on
their next close. Dropping never touches other streams.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from streaming import keys
from streaming.aggregation import TimeframeAggregator
from streaming.alerts.rules import AlertState
from streaming.candle_checks import candle_defect
from streaming.models import Candle, CandleUpdate
from streaming.pipeline.close_script import CloseOutcome
from streaming.pipeline.config import BASE, PipelineConfig, SymbolPool
from streaming.pipeline.events import symbol_event_open
from streaming.pipeline.future import marker_in_future, repair_future
from streaming.pipeline.staging import Staged, Stream, StreamHead, stream_head
from streaming.pipeline.state import StreamState, rebuild
from streaming.pipeline.warmup import StoredTail
from streaming.ratelog import RateLimitedLog
from streaming.store.alert_state import decode_alert_state
from streaming.store.candles import candle_keys
from streaming.store.codec import decode_candle
from streaming.timeframes import TIMEFRAME_MS, bucket_start

DAY = "1d"
_PUBLISHED = CloseOutcome.PUBLISHED
_CORRECTION = CloseOutcome.CORRECTION


class StreamStates:
    """The streams of one exchange's pipeline: the universe (symbol -> storage pool), the cached
    state of each stream and aggregated symbol, its loading and all of its invalidation."""

    def __init__(self, redis: aioredis.Redis, exchange_id: int, exchange_name: str,
                 pools: Mapping[str, SymbolPool], aggregated: Sequence[str], config: PipelineConfig,
                 counters: Counter[str], log: RateLimitedLog) -> None:
        self.redis = redis
        self.exchange_id = exchange_id
        self.exchange_name = exchange_name
        self.aggregated = tuple(aggregated)  # timeframes built here from BASE
        self.config = config
        self.counters = counters
        self._log = log
        self._pools: dict[str, SymbolPool] = dict(pools)
        self._states: dict[Stream, StreamState] = {}
        self._aggregators: dict[str, TimeframeAggregator] = {}
        self._symbol_opens: dict[str, bytes] = {}  # per symbol: its streams' StreamHeads share it

    # --- the universe -----------------------------------------------------------------------

    @property
    def pools(self) -> Mapping[str, SymbolPool]:
        return self._pools

    def pool(self, symbol: str) -> SymbolPool | None:
        return self._pools.get(symbol)

    def set_pools(self, pools: Mapping[str, SymbolPool]) -> None:
        """Replace the universe; memory of symbols that left or moved to another pool is dropped
        (their keys change; their Redis data stays)."""
        changed = {s for s, p in self._pools.items() if pools.get(s) != p}
        self._pools = dict(pools)
        for key in [k for k in self._states if k[0] in changed]:
            del self._states[key]
        for sym in [s for s in self._aggregators if s in changed]:
            del self._aggregators[sym]
        for sym in [s for s in self._symbol_opens if s not in self._pools]:
            del self._symbol_opens[sym]

    # --- the cache --------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._states)

    def get(self, stream: Stream) -> StreamState:
        """The state of a loaded stream (ensure_loaded covers every stream a batch touches; a
        stream missing anyway starts empty)."""
        st = self._states.get(stream)
        if st is None:
            st = self._states[stream] = StreamState()
        return st

    def peek(self, stream: Stream) -> StreamState | None:
        return self._states.get(stream)

    def get_with_head(self, stream: Stream) -> tuple[StreamState, StreamHead]:
        """`get`, and the stream's StreamHead kept in its state: encoded again only after the state
        was dropped and reloaded (rare; the reload costs a round trip anyway). One lookup: every
        close staged needs both."""
        state = self._states.get(stream)
        if state is None:
            state = self._states[stream] = StreamState()
        head = state.head
        if head is None:
            symbol, tf = stream
            pool = self._pools[symbol]
            opening = self._symbol_opens.get(symbol)
            if opening is None:
                opening = self._symbol_opens[symbol] = symbol_event_open(self.exchange_id, self.exchange_name, symbol)
            head = state.head = stream_head(self.exchange_id, self.exchange_name, symbol, tf, pool.user_ids,
                                            self.config.user_ttl_s, opening)
        return state, head

    def aggregator(self, symbol: str) -> TimeframeAggregator:
        """The aggregator of a loaded symbol (a symbol missing anyway starts empty)."""
        agg = self._aggregators.get(symbol)
        if agg is None:
            agg = self._aggregators[symbol] = TimeframeAggregator(self.aggregated)
        return agg

    def peek_aggregator(self, symbol: str) -> TimeframeAggregator | None:
        return self._aggregators.get(symbol)

    def aggregators(self) -> list[tuple[str, TimeframeAggregator]]:
        """The loaded aggregators of symbols still in the universe."""
        return [(s, a) for s, a in self._aggregators.items() if s in self._pools]

    def installed(self, stream: Stream, state: StreamState) -> None:
        """The stream's candles were just rewritten in Redis (warm-up) and `state` built from them."""
        self.rewritten(stream)
        self._states[stream] = state

    # --- invalidation: memory ran ahead of Redis, or Redis changed under it -----------------

    def invalidate(self, stream: Stream) -> None:
        """Rebuild one stream from the store on its next close."""
        self._states.pop(stream, None)

    def invalidate_aggregates(self, symbol: str) -> None:
        """Rebuild the symbol's aggregator from the stored BASE candles on its next BASE close."""
        self._aggregators.pop(symbol, None)

    def rewritten(self, stream: Stream) -> None:
        """Stored candles of `stream` were replaced outside the close script (warm-up, a
        reconciled bar): rebuild the stream and, for BASE, its symbol's aggregator."""
        self._states.pop(stream, None)
        if stream[1] == BASE:
            self._aggregators.pop(stream[0], None)

    def invalidate_close(self, stream: Stream) -> None:
        """A close of `stream` may have been half applied: rebuild the stream and, for a BASE close
        that is aggregated, the symbol's aggregator and aggregated streams."""
        self._states.pop(stream, None)
        symbol, tf = stream
        if tf == BASE and self.aggregated:
            self._aggregators.pop(symbol, None)
            for agg_tf in self.aggregated:
                self._states.pop((symbol, agg_tf), None)

    def forget(self, staged: Iterable[Staged], *half_applied: Stream) -> None:
        """A batch never reached Redis, or may not have: memory advanced by its closes, so rebuild
        exactly the streams (and aggregators) it touched, and those a close was half applied to
        when its staging failed."""
        aggregated = self.aggregated
        for s in staged:
            self._states.pop((s.symbol, s.timeframe), None)
            if aggregated and (s.timeframe == BASE or s.timeframe in aggregated):
                self._aggregators.pop(s.symbol, None)
        for stream in half_applied:
            self.invalidate_close(stream)

    def check_outcomes(self, staged: Sequence[Staged], outcomes: Sequence[CloseOutcome]) -> None:
        """Where the script disagreed with memory (another writer, a correction, a stale cache),
        rebuild the stream from the store."""
        states = self._states
        for s, o in zip(staged, outcomes, strict=True):
            if o is _PUBLISHED:
                if not s.expected_new:
                    states.pop((s.symbol, s.timeframe), None)
            elif s.expected_new or o is _CORRECTION:
                states.pop((s.symbol, s.timeframe), None)

    # --- loading ----------------------------------------------------------------------------

    async def ensure_loaded(self, items: Sequence[CandleUpdate]) -> None:
        """Load every stream (and aggregator) the closes of `items` touch and memory lacks, in one
        round trip. A BASE close of an aggregated symbol touches its aggregated streams too."""
        need: dict[Stream, None] = {}
        aggs: dict[str, int] = {}
        states = self._states
        aggregated = self.aggregated
        for u in items:
            k = (u.symbol, u.timeframe)
            if k not in states:
                need[k] = None
            if aggregated and u.timeframe == BASE:
                for tf in aggregated:
                    if (u.symbol, tf) not in states:
                        need[(u.symbol, tf)] = None
                if u.symbol not in self._aggregators and u.symbol not in aggs:
                    aggs[u.symbol] = u.candle.timestamp
        await self._load(list(need), list(aggs.items()))

    async def ensure_streams(self, streams: Iterable[Stream]) -> None:
        await self._load([k for k in dict.fromkeys(streams) if k not in self._states], [])

    async def _load(self, need: list[Stream], aggs: list[tuple[str, int]]) -> None:
        if not need and not aggs:
            return
        ex = self.exchange_id
        pipe = self.redis.pipeline(transaction=False)
        for sym, tf in need:
            pool = self._pools[sym]
            pipe.zrange(candle_keys(ex, sym, tf, pool.user_ids)[0], -self.config.max_candles, -1)
            pipe.hgetall(keys.alert_state(ex, sym, tf))
            pipe.get(keys.closed_marker(ex, sym, tf))
        for sym, ts in aggs:
            # replay since the start of the open bucket of the largest aggregated timeframe
            pool = self._pools[sym]
            day = bucket_start(ts, DAY) if DAY in TIMEFRAME_MS else ts
            largest = max(TIMEFRAME_MS[tf] for tf in self.aggregated)
            start = min(day, ts - ts % largest)
            pipe.zrangebyscore(candle_keys(ex, sym, BASE, pool.user_ids)[0], start, f"({ts}")
        res = await pipe.execute()
        self.counters["streams_loaded"] += len(need)
        now_ms = self.config.clock_ms()
        for i, stream in enumerate(need):
            sym, tf = stream
            raw, alert_raw, marker = res[3 * i], res[3 * i + 1], res[3 * i + 2]
            if marker_in_future(marker, now_ms):
                await self.repair_future(sym, tf, now_ms)
                raw = await self.redis.zrange(candle_keys(ex, sym, tf, self._pools[sym].user_ids)[0],
                                              -self.config.max_candles, -1)
            alerts: AlertState | None = None
            try:
                alerts = decode_alert_state(alert_raw) if alert_raw else None
            except ValueError as exc:
                self.counters["bad_alert_state"] += 1
                self._log.warning("alertstate", "alert state of %s %s unreadable (%s); starting fresh", sym, tf, exc)
            self._states[stream] = rebuild(self._decode_all(raw), tf, alerts)  # `need`'s tuple: one per stream
        for j, (sym, _) in enumerate(aggs):
            candles = self._decode_all(res[3 * len(need) + j])
            self._aggregators[sym] = TimeframeAggregator.rebuild(candles, self.aggregated)

    async def stored_tail(self, symbol: str, tf: str) -> StoredTail:
        """How many bars the store holds of a stream and the newest one's open time (the warm-up
        asks; a marker or bars from the future are repaired first: they would silence it)."""
        pool = self._pools.get(symbol)
        if pool is None:
            return StoredTail(0, None)
        await self.repair_future(symbol, tf)
        key = candle_keys(self.exchange_id, symbol, tf, pool.user_ids)[0]
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(key)
        pipe.zrange(key, -1, -1, withscores=True)
        pipe.zrange(key, 0, 0, withscores=True)
        count, newest, oldest = await pipe.execute()
        return StoredTail(int(count), int(newest[0][1]) if newest else None, int(oldest[0][1]) if oldest else None)

    async def repair_future(self, symbol: str, tf: str, now_ms: int | None = None) -> None:
        """Move the stream's close marker back from the future and drop its stored bars from
        there (streaming.pipeline.future), counted."""
        pool = self._pools.get(symbol)
        if pool is None:
            return
        now = self.config.clock_ms() if now_ms is None else now_ms
        repaired = await repair_future(self.redis, self.exchange_id, symbol, tf, pool.user_ids, now)
        if repaired.marker:
            self.counters["future_markers_repaired"] += 1
        if repaired.bars:
            self.counters["future_bars_dropped"] += repaired.bars

    def _decode_all(self, raw: list[Any]) -> list[Candle]:
        """Stored candles, oldest first, without any that cannot exist (stored before they were
        refused at the boundary): they must not poison a rebuilt indicator or aggregator."""
        out = []
        for m in raw:
            try:
                c = decode_candle(m)
            except Exception:
                c = None
            if c is None or candle_defect(c) is not None:
                self.counters["bad_stored_candle"] += 1
                continue
            out.append(c)
        return out
