"""CandlePipeline: closed candle -> store -> close event (exactly once) -> MACD-V -> alerts.

The imperative shell around the pure parts (StreamState, TimeframeAggregator, alert rules).
Closes are handled in batches: one pipelined round trip loads the state of streams seen for
the first time, one call of the atomic script streaming.store.scripts.CLOSE_BATCH handles every
close of the batch. Per close it stores the candle and publishes the close event, the indicator
value and the alerts only if the bar is newer than the stream's marker, so duplicates,
reconnects, backfills and restarts never publish a bar twice. MACD-V and the alert rules run
here, before the script, on in-memory state that is rebuilt from the store whenever Redis
disagrees with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streaming import keys
from streaming.adapters.base import ConnectionState, ExchangeAdapter
from streaming.aggregation import AggregationError, TimeframeAggregator, aggregate
from streaming.alerts.publish import alert_event, encode_alert
from streaming.alerts.rules import AlertState, evaluate
from streaming.models import Candle, CandleUpdate
from streaming.pipeline.config import PipelineConfig, SymbolPool, normalize_pools
from streaming.pipeline.events import close_event_from_member, close_event_open, indicator_json
from streaming.pipeline.listener import QueueListener
from streaming.pipeline.reconcile import Reconciler
from streaming.pipeline.state import StreamState, rebuild
from streaming.pipeline.warmup import WarmupReport, run_warm_up
from streaming.ratelog import RateLimitedLog
from streaming.store import scripts
from streaming.store.candles import CandleStore, candle_keys
from streaming.store.codec import BadCandle, check_candle, decode_candle, encode_candle
from streaming.timeframes import TIMEFRAME_MS, TIMEFRAMES, UnknownTimeframe, bucket_start, timeframe_ms

log = logging.getLogger(__name__)

BASE = "5m"
DAY = "1d"


_encode_spec = msgspec.json.Encoder().encode


class _Batch:
    """Closes staged for one call of the CLOSE_BATCH script. `entries` (run loop only) are the
    listener's queue entries it came from, requeued if Redis fails; `task` its call in flight."""

    __slots__ = ("entries", "specs", "staged", "task")

    def __init__(self) -> None:
        self.specs: list[bytes] = []
        self.staged: list[tuple[str, str, Candle, bool]] = []
        self.entries: list[tuple[int, CandleUpdate]] = []
        self.task: asyncio.Future[Any] | None = None


class CandlePipeline:
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
        self._inflight: deque[_Batch] = deque()
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

    # --- run loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume the listener's queue until close(). Redis errors are retried, never fatal.

        Pipelined: while one batch's script runs in Redis, the next batch is prepared here (MACD-V,
        alerts, JSON), up to `config.pipeline_depth` calls in flight. Batches in flight never share
        a stream, so each stream's closes still reach Redis in order; a failed batch is requeued
        in front of everything queued after it."""
        flusher = None
        if self.aggregated and self.config.flush_interval_s > 0:
            flusher = asyncio.create_task(self._flush_loop())
        q = self.listener.queue
        ready = self.listener.ready
        inflight = self._inflight
        depth = self.config.pipeline_depth
        try:
            while not self._closed:
                if inflight and inflight[0].task.done():  # type: ignore[union-attr]
                    if await self._settle(len(inflight) - 1):
                        await asyncio.sleep(0.5)
                    continue
                if not q:
                    ready.clear()
                    await ready.wait()  # a new close, or a batch in flight finished
                    continue
                if len(inflight) >= depth:
                    if await self._settle(depth - 1):
                        await asyncio.sleep(0.5)
                    continue
                n = min(len(q), self.config.batch_max)
                entries = [q.popleft() for _ in range(n)]
                try:
                    if not await self._submit(entries):
                        await asyncio.sleep(0.5)
                except (RedisError, OSError) as exc:
                    self._redis_failed(exc)
                    q.extendleft(reversed(entries))
                    await asyncio.sleep(0.5)
                except Exception:
                    self._batch_failed(entries)
        finally:
            try:
                await self._settle()
            finally:
                if flusher is not None:
                    flusher.cancel()
                    await asyncio.gather(flusher, return_exceptions=True)

    def _redis_failed(self, exc: BaseException) -> None:
        self.counters["redis_errors"] += 1
        self._log.warning("redis", "pipeline %s: Redis failed (%s); retrying the batch", self.exchange_name, exc)

    def _batch_failed(self, entries: Sequence[tuple[int, CandleUpdate]]) -> None:
        # a bug must not stop the live side: drop the batch, rebuild its streams from Redis
        self.counters["batch_errors"] += 1
        log.exception("pipeline %s: a batch of %d closes failed; dropped", self.exchange_name, len(entries))
        for _, u in entries:
            self._states.pop((getattr(u, "symbol", ""), getattr(u, "timeframe", "")), None)
        self._aggs.clear()

    async def _submit(self, entries: list[tuple[int, CandleUpdate]]) -> bool:
        """Stage queue entries as one batch and start its script call without waiting for it.
        Returns False if an earlier batch failed and everything was requeued instead."""
        async with self._lock:
            items = [u for _, u in entries if self._valid(u)]
            if not items:
                return True
            busy = self._busy
            # one stream in two calls in flight could reach Redis out of order (and aggregation
            # state spans timeframes): wait for the earlier calls first
            conflict = self.aggregated or (busy and any((u.symbol, u.timeframe) in busy for u in items))
            if conflict and await self._settle(requeue_after=entries):
                return False
            self.counters["closes_received"] += len(items)
            await self._load(items)
            batch = _Batch()
            corrections = self._stage_all(batch, items)
            if corrections or not batch.staged:
                await self._execute(batch)
                await self._correct(corrections)
                return True
            batch.entries = entries
            for sym, tf, _, _ in batch.staged:
                busy[(sym, tf)] += 1
            task = asyncio.ensure_future(self._call(batch))
            task.add_done_callback(self._wake)
            batch.task = task
            self._inflight.append(batch)
        await asyncio.sleep(0)  # let the call write its command before the next batch is prepared
        return True

    def _wake(self, _task: asyncio.Future[Any]) -> None:
        self.listener.ready.set()

    async def _settle(self, keep: int = 0, requeue_after: list[tuple[int, CandleUpdate]] | None = None) -> int:
        """Finish calls in flight (oldest first) until at most `keep` remain; returns how many
        failed. Failed batches go back to the front of the queue, oldest first (followed by
        `requeue_after`, if any failed); their streams and the aggregators are rebuilt from Redis."""
        inflight = self._inflight
        failed: list[_Batch] = []
        while len(inflight) > keep or (failed and inflight):
            batch = inflight[0]
            try:
                codes = await batch.task  # type: ignore[misc]
            except (RedisError, OSError) as exc:
                self._redis_failed(exc)
                failed.append(batch)
                codes = None
            except BaseException:
                inflight.popleft()
                self._release(batch)
                self._forget(batch)
                raise
            inflight.popleft()
            self._release(batch)
            if codes is not None:
                self._finish(batch, codes)
        if failed:
            for batch in failed:
                self._forget(batch)
            back = [e for b in failed for e in b.entries] + (requeue_after or [])
            self.listener.queue.extendleft(reversed(back))
        return len(failed)

    def _release(self, batch: _Batch) -> None:
        busy = self._busy
        for sym, tf, _, _ in batch.staged:
            k = (sym, tf)
            if busy[k] <= 1:
                del busy[k]
            else:
                busy[k] -= 1

    def _forget(self, batch: _Batch) -> None:
        """The in-memory states of a batch's streams ran ahead of Redis: rebuild them from the store."""
        for sym, tf, _, _ in batch.staged:
            self._states.pop((sym, tf), None)
        self._aggs.clear()

    async def close(self) -> None:
        self._closed = True
        self.listener.ready.set()
        if self.reconciler is not None:
            await self.reconciler.close()

    async def drain(self) -> None:
        """Process everything queued so far (tests, bench, shutdown)."""
        q = self.listener.queue
        while q:
            n = min(len(q), self.config.batch_max)
            await self.process([q.popleft()[1] for _ in range(n)])
        async with self._lock:
            await self._settle()

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
            batch = _Batch()
            for sym, tf, bar in bars:
                self.counters["aggregated"] += 1
                self._stage(batch, sym, tf, bar, "aggregate", self._pools[sym])
                if self.reconciler is not None:
                    self.reconciler.schedule(sym, tf, bar)
            return await self._execute(batch)

    # --- the batch -----------------------------------------------------------------------------

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
            batch = _Batch()
            corrections = self._stage_all(batch, items)
            published = await self._execute(batch)
            await self._correct(corrections)
            return published

    def _stage_all(self, batch: _Batch, items: Sequence[CandleUpdate]) -> list[tuple[str, Any]]:
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

    def _head(self, symbol: str, tf: str, pool: SymbolPool) -> tuple[bytes, bytes]:
        """The static parts of a stream's close spec, encoded once: the spec's opening (its keys,
        candle TTL and close channel) and the close event's opening (exchange, symbol, timeframe)."""
        ex = self.exchange_id
        users = pool.user_ids
        ks = [keys.closed_marker(ex, symbol, tf), keys.indicator(ex, symbol, tf), keys.alert_state(ex, symbol, tf),
              *candle_keys(ex, symbol, tf, users)]
        spec_open = _encode_spec([ks, self.config.user_ttl_s if users else 0,
                                  keys.candle_close_channel(ex, symbol, tf)])[:-1] + b","
        event_open = close_event_open(ex, self.exchange_name, symbol, tf)
        head = self._heads[(symbol, tf)] = (spec_open, event_open)
        return head

    def _stage(self, batch: _Batch, symbol: str, tf: str, candle: Candle, source: str, pool: SymbolPool) -> None:
        key = (symbol, tf)
        st = self._states.get(key)
        if st is None:  # defensive: _load covers every stream a batch touches
            st = self._states[key] = StreamState()
        spec_open, event_open = self._heads.get(key) or self._head(symbol, tf, pool)
        ts = candle.timestamp
        last = st.last
        expected_new = last is None or ts > last.timestamp
        if expected_new:
            value = st.advance(candle, tf)
            state, signals = evaluate(st.alerts, value, ts + TIMEFRAME_MS[tf], self.config.cooldown_ms)
            st.alerts = state
            fields = [x for kv in state.to_dict().items() for x in kv]
            ind = indicator_json(ts, value).decode()
            if signals:
                ex = self.exchange_id
                alerts = [encode_alert(alert_event(ex, self.exchange_name, symbol, tf, ts, candle.close, s)).decode()
                          for s in signals]
            else:
                alerts = []
        else:
            fields, ind, alerts = [], "", []
        member = encode_candle(candle)
        event = close_event_from_member(event_open, member, source)
        tail = _encode_spec((str(ts), member.decode(), event.decode(), ind, fields, alerts))
        batch.specs.append(spec_open + tail[1:])
        batch.staged.append((symbol, tf, candle, expected_new))

    def _call(self, batch: _Batch) -> Any:
        """The script call of one batch (a coroutine; its result is the string of result codes)."""
        cfg = self.config
        return self._close_batch(keys=[keys.ALERTS_STREAM],
                                 args=[self._alerts_channel, cfg.alerts_stream_maxlen, cfg.max_candles, *batch.specs])

    async def _execute(self, batch: _Batch) -> int:
        if not batch.staged:
            return 0
        try:
            results = await self._call(batch)
        except BaseException:
            # the in-memory states already advanced past bars Redis may not have: reload them
            self._forget(batch)
            raise
        return self._finish(batch, results)

    def _finish(self, batch: _Batch, results: Any) -> int:
        staged = batch.staged
        published = 0
        c = self.counters
        codes = results.decode() if isinstance(results, bytes) else str(results)
        if len(codes) != len(staged):
            raise RuntimeError(f"close script returned {len(codes)} results for {len(staged)} closes")
        on_published = self.on_published
        states = self._states
        for (sym, tf, candle, expected_new), r in zip(staged, codes, strict=True):
            if r == "1":
                published += 1
                if on_published is not None:
                    on_published(sym, tf, candle)
                if not expected_new:
                    states.pop((sym, tf), None)
            else:
                c["corrections" if r == "2" else "duplicates"] += 1
                # our memory disagreed with Redis (another writer, a correction): rebuild from the store
                if expected_new or r == "2":
                    states.pop((sym, tf), None)
        c["published"] += published
        return published

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

    async def _load(self, items: Sequence[CandleUpdate]) -> None:
        """Rebuild state of streams not in memory from the store, in one round trip."""
        need: list[tuple[str, str]] = []
        aggs: list[tuple[str, int]] = []
        seen: set[tuple[str, str]] = set()
        agg_seen: set[str] = set()
        for u in items:
            tfs = (u.timeframe, *self.aggregated) if self.aggregated and u.timeframe == BASE else (u.timeframe,)
            for tf in tfs:
                k = (u.symbol, tf)
                if k not in self._states and k not in seen:
                    seen.add(k)
                    need.append(k)
            if self.aggregated and u.timeframe == BASE and u.symbol not in self._aggs and u.symbol not in agg_seen:
                agg_seen.add(u.symbol)
                aggs.append((u.symbol, u.candle.timestamp))
        await self._load_streams(need, aggs)

    async def _load_streams(self, need: list[tuple[str, str]], aggs: list[tuple[str, int]]) -> None:
        if not need and not aggs:
            return
        ex = self.exchange_id
        pipe = self.redis.pipeline(transaction=False)
        for sym, tf in need:
            pool = self._pools[sym]
            pipe.zrange(candle_keys(ex, sym, tf, pool.user_ids)[0], -self.config.max_candles, -1)
            pipe.hgetall(keys.alert_state(ex, sym, tf))
        for sym, ts in aggs:
            pool = self._pools[sym]
            day = bucket_start(ts, DAY) if DAY in TIMEFRAME_MS else ts
            largest = max(TIMEFRAME_MS[tf] for tf in self.aggregated)
            start = min(day, ts - ts % largest)
            pipe.zrangebyscore(candle_keys(ex, sym, BASE, pool.user_ids)[0], start, f"({ts}")
        res = await pipe.execute()
        self.counters["streams_loaded"] += len(need)
        for i, (sym, tf) in enumerate(need):
            raw, alert_raw = res[2 * i], res[2 * i + 1]
            try:
                alerts = AlertState.from_dict(alert_raw)
            except ValueError as exc:
                self.counters["bad_alert_state"] += 1
                self._log.warning("alertstate", "alert state of %s %s unreadable (%s); starting fresh", sym, tf, exc)
                alerts = AlertState()
            candles = self._decode_all(raw)
            self._states[(sym, tf)] = rebuild(candles, tf, alerts)
        for j, (sym, _) in enumerate(aggs):
            candles = self._decode_all(res[2 * len(need) + j])
            self._aggs[sym] = TimeframeAggregator.rebuild(candles, self.aggregated)

    def _decode_all(self, raw: list[Any]) -> list[Candle]:
        out = []
        for m in raw:
            try:
                out.append(decode_candle(m))
            except Exception:
                self.counters["bad_stored_candle"] += 1
        return out

    # --- warm-up -------------------------------------------------------------------------------

    async def warm_up(self, adapter: ExchangeAdapter, symbols: Iterable[str] | None = None,
                      timeframes: Iterable[str] | None = None,
                      progress: Callable[[int, int], None] | None = None) -> WarmupReport:
        """Backfill every (symbol, timeframe) over REST to >= config.warmup_candles closed candles and
        build MACD-V from them. Publishes no historic close events or alerts: backfilled bars count
        as already published (the marker moves to the newest), only the newest state matters."""
        syms = [s for s in (self._pools if symbols is None else symbols) if s in self._pools]
        tfs = list(self.timeframes if timeframes is None else timeframes)
        for tf in tfs:
            if tf not in self.timeframes:
                raise UnknownTimeframe(f"timeframe {tf!r} is not one of this pipeline's {', '.join(self.timeframes)}")
        return await run_warm_up(adapter, syms, tfs, self.config, self._install_backfill, progress, self.counters)

    async def _install_backfill(self, symbol: str, tf: str, candles: list[Candle]) -> int:
        pool = self._pools.get(symbol)
        if pool is None or not candles:
            return 0
        ex = self.exchange_id
        async with self._lock:
            await self._settle()
            written = await self.store.write_many(ex, symbol, tf, candles, pool.user_ids)
            await self.store.advance_marker(ex, symbol, tf, candles[-1].timestamp)
            stored = await self.store.read(ex, symbol, tf, self.config.max_candles, pool.user_ids)
            try:
                old = AlertState.from_dict(await self.redis.hgetall(keys.alert_state(ex, symbol, tf)))
            except ValueError:
                old = AlertState()
            state = rebuild(stored, tf)
            value = state.macd.value()
            # the newest value becomes the baseline: the next live close compares against it
            state.alerts = AlertState(value.macd_v, old.cooldowns, old.oversold_latched, old.overbought_latched)
            pipe = self.redis.pipeline(transaction=False)
            if state.last is not None:
                pipe.set(keys.indicator(ex, symbol, tf), indicator_json(state.last.timestamp, value))
            pipe.hset(keys.alert_state(ex, symbol, tf), mapping=state.alerts.to_dict())
            await pipe.execute()
            self._states[(symbol, tf)] = state
            if tf == BASE:
                self._aggs.pop(symbol, None)  # rebuilt from the store on the next live 5m
            return written

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
