"""CandlePipeline: closed candle -> store -> close event (exactly once) -> MACD-V -> alerts.

A thin facade over parts that own their state (docs/pipeline.md, "Internal shape"):
StreamStates (per-stream state, its loading and invalidation), stage_close (pure: MACD-V, alert
rules, the close's spec), CloseScript (the atomic CLOSE_BATCH call and its outcomes),
Aggregation (timeframes the exchange does not stream, built from 5m) and InFlight (script calls
in flight). Closes are handled in batches: one pipelined round trip loads the streams a batch
touches for the first time, one script call stores and publishes the whole batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from streaming.adapters.base import ConnectionState, ExchangeAdapter
from streaming.adapters.clock import ExchangeClock
from streaming.models import Candle, CandleUpdate
from streaming.pipeline.aggregates import Aggregation
from streaming.pipeline.close_meter import CloseMeter
from streaming.pipeline.close_script import CloseOutcome, CloseScript
from streaming.pipeline.config import BASE, PipelineConfig, SymbolPool, aggregated_timeframes, normalize_pools
from streaming.pipeline.history_installer import HistoryInstaller
from streaming.pipeline.inflight import Entry, InFlight
from streaming.pipeline.listener import QueueListener
from streaming.pipeline.reconcile import Reconciler
from streaming.pipeline.staging import Batch, Stream, stage_close
from streaming.pipeline.state import StreamState
from streaming.pipeline.streams import StreamStates
from streaming.pipeline.validation import close_rejection
from streaming.pipeline.warmup import WarmupReport, run_warm_up
from streaming.ratelog import RateLimitedLog
from streaming.store.candles import CandleStore
from streaming.timeframes import TIMEFRAMES, UnknownTimeframe, timeframe_ms

log = logging.getLogger(__name__)

# real seconds an aggregate bucket stays open after it ended at least (see _aggregate_grace_ms)
AGGREGATE_GRACE_FLOOR_S = 3.0
_PUBLISHED = CloseOutcome.PUBLISHED
_DUPLICATE = CloseOutcome.DUPLICATE
_CORRECTION = CloseOutcome.CORRECTION


class CandlePipeline:
    """The live pipeline of one exchange. Hand `.listener` to `adapter.live(...)`, then `await run()`.

    `native_timeframes`: the timeframes the exchange streams itself; the others are built here
    from closed 5m. Default: the adapter's `native_timeframes` if it declares them, else all.
    """

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
        native_timeframes: Iterable[str] | None = None,
        on_state: Callable[[ConnectionState, str | None], None] | None = None,
        on_rejected: Callable[[list[str], str], None] | None = None,
        meter: CloseMeter | None = None,
    ) -> None:
        if isinstance(exchange_id, bool) or not isinstance(exchange_id, int):
            raise ValueError(f"exchange_id must be an integer, got {exchange_id!r}")
        self.config = config = config or PipelineConfig()
        for tf in timeframes:
            timeframe_ms(tf)  # UnknownTimeframe names the bad one
        if native_timeframes is None and adapter is not None:
            native_timeframes = getattr(adapter, "native_timeframes", None)
        self.redis = redis
        self.exchange_id = exchange_id
        self.exchange_name = exchange_name
        self.timeframes = tuple(timeframes)
        self.aggregated = aggregated_timeframes(self.timeframes, native_timeframes, config.aggregate)
        self.adapter = adapter
        self.counters: Counter[str] = Counter()
        self.meter = meter if meter is not None else CloseMeter()
        self._log = RateLimitedLog(log)
        self.store = CandleStore(redis, config.store_limits)
        self.listener = QueueListener(on_state, on_rejected)
        self.states = StreamStates(redis, exchange_id, exchange_name, normalize_pools(symbol_pools), self.aggregated,
                                   config, self.counters, self._log)
        self.script = CloseScript(redis, exchange_id, config)
        self.aggregation = (Aggregation(self.states, self.store, exchange_id, self.aggregated, self.counters,
                                        self._log) if self.aggregated else None)
        self._inflight = InFlight(self.listener.queue, self._settled, self._lost, self._redis_failed)
        self._lock = asyncio.Lock()
        self._closed = False
        self.reconciler: Reconciler | None = None
        wants = config.reconcile if config.reconcile is not None else adapter is not None
        if wants and self.aggregated:
            if adapter is None:
                raise ValueError("reconcile=True needs the adapter (its REST candles are the reference)")
            self.reconciler = Reconciler(adapter, self.store, exchange_id, self.states.pool, self._invalidate,
                                         config, self.counters)
        # whether the live stream holds a symbol's 5m bars (behind a REST fill): its aggregate
        # buckets are not closed by the clock meanwhile (the worker sets it to the stream's)
        self.waiting: Callable[[str], bool] | None = None
        self._clock = ExchangeClock(config.clock_ms)  # measures how fast a simulated clock runs
        # called with (symbol, timeframe, candle) after a close was published (tests, bench)
        self.on_published: Callable[[str, str, Candle], None] | None = None
        # the warm-up's history, and a failed warm-up's fetched again in the background
        self.history = HistoryInstaller(redis, self.store, exchange_id, exchange_name, config, self.states,
                                        self.counters, self._lock, self._inflight)

    # --- universe and introspection -----------------------------------------------------------

    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self.states.pools)

    def set_pools(self, symbol_pools: Mapping[str, SymbolPool] | Iterable[str]) -> None:
        """Replace the universe; state of symbols that left is dropped (their Redis data stays)."""
        self.states.set_pools(normalize_pools(symbol_pools))
        if self.history.retry is not None:
            pools = self.states.pools
            self.history.retry.drop(lambda symbol: symbol in pools)

    def state(self, symbol: str, timeframe: str) -> StreamState | None:
        return self.states.peek((symbol, timeframe))

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.counters)
        out.update(queued=len(self.listener.queue), streams=len(self.states), symbols=len(self.states.pools),
                   forming_seen=self.listener.forming, listener_invalid=self.listener.invalid,
                   rejected=dict(self.listener.rejected))
        if self.reconciler is not None:
            out["reconcile_pending"] = self.reconciler.pending
        out["history_missing"] = self.history.missing
        return out

    # --- process: one batch, start to finish --------------------------------------------------

    async def process(self, updates: Sequence[CandleUpdate]) -> int:
        """Handle closed candle updates (oldest first per stream); returns how many closes were published."""
        async with self._lock:
            await self._inflight.settle()
            items = [u for u in updates if self._valid(u)]
            if not items:
                return 0
            self.counters["closes_received"] += len(items)
            batch = await self._stage(items)
            published = await self._execute(batch)
            if self.aggregation is not None:
                await self.aggregation.correct(batch.corrections)
            return published

    def _valid(self, u: CandleUpdate) -> bool:
        reason = close_rejection(u, self.states.pools, self.timeframes, self.aggregated)
        if reason is None:
            return True
        kind, _, defect = reason.partition(":")
        self.counters[f"skipped_{kind}"] += 1
        if defect:
            self.counters[f"bad_candle_{defect}"] += 1
        self._log.warning(reason, "pipeline %s: skipped a close (%s): %s %s", self.exchange_name, reason,
                          getattr(u, "symbol", "?"), getattr(u, "timeframe", "?"))
        return False

    async def _stage(self, items: list[CandleUpdate]) -> Batch:
        """Load and stage every close of `items` (and the aggregate bars they close) as one batch.
        A close whose staging fails is dropped (counted, logged) and the others are staged again
        from state reloaded from Redis: one bad close never costs another stream anything."""
        states = self.states
        while True:
            await states.ensure_loaded(items)
            batch = Batch()
            failed = self._stage_all(batch, items)
            if failed is None:
                break
            i, stream, exc = failed
            states.forget(batch.staged, (items[i].symbol, items[i].timeframe), stream)
            self.counters["skipped_stage_error"] += 1
            self._log.warning("stage", "pipeline %s: staging a close of %s %s failed (%s: %s); dropped",
                              self.exchange_name, *stream, type(exc).__name__, exc)
            items = items[:i] + items[i + 1:]
        self._note_aggregated(batch)
        return batch

    def _stage_all(self, batch: Batch, items: Sequence[CandleUpdate]) -> tuple[int, Stream, Exception] | None:
        """Stage `items` into `batch`; on an exception, (index of the item, its stream, exception)."""
        state_and_head, add = self.states.get_with_head, batch.add
        cooldown = self.config.cooldown_ms
        aggregation = self.aggregation
        for i, u in enumerate(items):
            stream = (u.symbol, u.timeframe)
            try:
                add(*stage_close(*state_and_head(stream), u.candle, u.source, cooldown))
                if aggregation is not None and u.timeframe == BASE:
                    result = aggregation.advance(u.symbol, u.candle)
                    if result is not None:
                        for tf, bar in result.closed:
                            stream = (u.symbol, tf)
                            self._stage_aggregate(batch, u.symbol, tf, bar)
                        batch.corrections.extend((u.symbol, c) for c in result.corrections)
            except Exception as exc:
                return i, stream, exc
        return None

    def _stage_aggregate(self, batch: Batch, symbol: str, tf: str, bar: Candle) -> None:
        stream = (symbol, tf)
        last = self.states.get(stream).last_ts
        if last is not None and bar.timestamp <= last:
            # that bar is stored already (the exchange's own, from the warm-up, or closed before):
            # one built now may rest on part of its 5m bars; changed 5m bars correct it instead
            self.counters["aggregate_already_stored"] += 1
            return
        batch.add(*stage_close(*self.states.get_with_head(stream), bar, "aggregate", self.config.cooldown_ms))
        batch.aggregated.append((symbol, tf, bar))

    def _note_aggregated(self, batch: Batch) -> None:
        if batch.aggregated:
            self.counters["aggregated"] += len(batch.aggregated)
            if self.reconciler is not None:
                for sym, tf, bar in batch.aggregated:
                    self.reconciler.schedule(sym, tf, bar)

    async def _execute(self, batch: Batch) -> int:
        if not batch.staged:
            return 0
        try:
            outcomes = await self._timed(self.script.run(batch.specs))
        except BaseException:
            self._lost(batch)
            raise
        return self._settled(batch, outcomes)

    def _settled(self, batch: Batch, outcomes: list[CloseOutcome]) -> int:
        """Count a stored batch's outcomes; streams where Redis disagreed with memory are rebuilt."""
        self.states.check_outcomes(batch.staged, outcomes)
        published = outcomes.count(_PUBLISHED)
        self.counters["published"] += published
        if published:
            self.meter.published(((s.timeframe, s.candle.timestamp) for s, o in zip(batch.staged, outcomes, strict=True)
                                  if o is _PUBLISHED), self.config.clock_ms())
        for name, outcome in (("duplicates", _DUPLICATE), ("corrections", _CORRECTION)):
            if n := outcomes.count(outcome):
                self.counters[name] += n
        if self.on_published is not None:
            for s, o in zip(batch.staged, outcomes, strict=True):
                if o is _PUBLISHED:
                    self.on_published(s.symbol, s.timeframe, s.candle)
        return published

    async def _timed(self, call: Awaitable[list[CloseOutcome]]) -> list[CloseOutcome]:
        start = time.perf_counter()
        try:
            return await call
        finally:
            self.meter.script_call(time.perf_counter() - start)

    def _lost(self, batch: Batch) -> None:
        # memory advanced by closes Redis may not have: rebuild exactly those streams
        self.states.forget(batch.staged)

    # --- run loop: the listener's queue, pipelined --------------------------------------------

    async def run(self) -> None:
        """Consume the listener's queue until close(). Redis errors are retried, never fatal.

        Pipelined: while one batch's script runs in Redis, the next batch is prepared here (MACD-V,
        alerts, JSON), up to `config.pipeline_depth` calls in flight (InFlight)."""
        flusher = None
        if self.aggregation is not None and self.config.flush_interval_s > 0:
            flusher = asyncio.create_task(self._flush_loop())
        q = self.listener.queue
        ready = self.listener.ready
        inflight = self._inflight
        depth = self.config.pipeline_depth
        try:
            while not self._closed:
                if inflight.oldest_done:
                    if await inflight.settle(len(inflight) - 1):
                        await asyncio.sleep(0.5)
                    continue
                if not q:
                    ready.clear()
                    await ready.wait()  # a new close, or a batch in flight finished
                    continue
                if len(inflight) >= depth:
                    if await inflight.settle(depth - 1):
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
                await inflight.settle()
            finally:
                if flusher is not None:
                    flusher.cancel()
                    await asyncio.gather(flusher, return_exceptions=True)

    async def _submit(self, entries: list[Entry]) -> bool:
        """Stage queue entries as one batch and start its script call without waiting for it.
        Returns False if an earlier batch failed and everything was requeued instead."""
        async with self._lock:
            items = [u for _, u in entries if self._valid(u)]
            if not items:
                return True
            inflight = self._inflight
            # one stream in two calls in flight could reach Redis out of order (and aggregation
            # state spans timeframes): wait for the earlier calls first
            conflict = bool(self.aggregated) or inflight.busy((u.symbol, u.timeframe) for u in items)
            if conflict and await inflight.settle(requeue_after=entries):
                return False
            self.counters["closes_received"] += len(items)
            batch = await self._stage(items)
            if batch.corrections or not batch.staged:
                await self._execute(batch)
                if self.aggregation is not None:
                    await self.aggregation.correct(batch.corrections)
                return True
            inflight.start(batch, entries, self._timed(self.script.run(batch.specs)), self.listener.ready.set)
        await asyncio.sleep(0)  # let the call write its command before the next batch is prepared
        return True

    def _redis_failed(self, exc: BaseException) -> None:
        self.counters["redis_errors"] += 1
        self._log.warning("redis", "pipeline %s: Redis failed (%s); retrying the batch", self.exchange_name, exc)

    def _batch_failed(self, entries: Sequence[Entry]) -> None:
        # a bug must not stop the live side: drop the batch, rebuild only its streams from Redis
        self.counters["batch_errors"] += 1
        log.exception("pipeline %s: a batch of %d closes failed; dropped", self.exchange_name, len(entries))
        for _, u in entries:
            if isinstance(u, CandleUpdate):
                self.states.invalidate_close((u.symbol, u.timeframe))

    async def close(self) -> None:
        self._closed = True
        self.listener.ready.set()
        if self.reconciler is not None:
            await self.reconciler.close()
        if self.history.retry is not None:
            await self.history.retry.close()
        await self.script.aclose()

    async def drain(self) -> None:
        """Process everything queued so far (tests, bench, shutdown)."""
        q = self.listener.queue
        while q:
            n = min(len(q), self.config.batch_max)
            await self.process([q.popleft()[1] for _ in range(n)])
        async with self._lock:
            await self._inflight.settle()

    # --- aggregation by the clock, reconciliation, warm-up ------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            try:
                await self.flush_aggregates(self.config.clock_ms() - self._aggregate_grace_ms())
            except (RedisError, OSError) as exc:
                self._log.warning("flush", "aggregate flush failed (%s)", exc)
            except Exception as exc:
                self.counters["flush_errors"] += 1
                self._log.warning("flush-error", "aggregate flush failed (%s: %s)", type(exc).__name__, exc)

    def _aggregate_grace_ms(self) -> int:
        """The configured grace, but never less than AGGREGATE_GRACE_FLOOR_S of real time: on a
        simulated clock running 300 times faster, 120 s of exchange time are 0.4 s, less than the
        wait for the next bucket's first update that closes the last 5m bar (or the adapter's own
        clock-close of a quiet one)."""
        return max(self.config.aggregate_grace_ms, self._clock.real_ms(AGGREGATE_GRACE_FLOOR_S))

    async def flush_aggregates(self, now_ms: int) -> int:
        """Close aggregate buckets that ended at or before now_ms (symbols whose last 5m never came)."""
        if self.aggregation is None:
            return 0
        async with self._lock:
            await self._inflight.settle()
            bars = self.aggregation.due(now_ms, self.waiting)
            if not bars:
                return 0
            states = self.states
            batch = Batch()
            try:
                await states.ensure_streams((s, tf) for s, tf, _ in bars)
                for sym, tf, bar in bars:
                    self._stage_aggregate(batch, sym, tf, bar)
            except BaseException:
                # the aggregators already let go of these bars: rebuild them (and the streams) from Redis
                states.forget(batch.staged)
                for sym, _, _ in bars:
                    states.invalidate_aggregates(sym)
                raise
            self._note_aggregated(batch)
            return await self._execute(batch)

    async def _invalidate(self, symbol: str, timeframe: str) -> None:
        """The reconciler replaced a stored bar."""
        async with self._lock:
            await self._inflight.settle()
            self.states.rewritten((symbol, timeframe))

    async def warm_up(self, adapter: ExchangeAdapter, symbols: Iterable[str] | None = None,
                      timeframes: Iterable[str] | None = None,
                      progress: Callable[[int, int, int], None] | None = None, *,
                      until_ms: int | None = None,
                      ready: Callable[[str, str, int | None], None] | None = None) -> WarmupReport:
        """Backfill every (symbol, timeframe) over REST to >= config.warmup_candles closed candles
        (only the bars after the newest stored one when the store holds enough) and build MACD-V
        from them. Publishes no historic close events or alerts: history bars count as already
        published (the marker moves to the newest), only the newest state matters. `until_ms`:
        fetch only bars closed by then (the moment the live stream opened); `ready(symbol, tf,
        newest)`: a stream's history is in (streaming.pipeline.warmup)."""
        pools = self.states.pools
        syms = [s for s in (pools if symbols is None else symbols) if s in pools]
        tfs = list(self.timeframes if timeframes is None else timeframes)
        for tf in tfs:
            if tf not in self.timeframes:
                raise UnknownTimeframe(f"timeframe {tf!r} is not one of this pipeline's {', '.join(self.timeframes)}")
        report = await run_warm_up(adapter, syms, tfs, self.config, self.history.install, progress, self.counters,
                                   until_ms=until_ms, stored=self.states.stored_tail, ready=ready)
        self.history.retry_failed(adapter, report)
        return report
