"""Where a stream's REST history enters the store: the warm-up's, and a failed warm-up's arriving
later (HistoryRetry), each under the pipeline's lock once the script calls in flight settled, so a
history never races a live close; the stream's cached state is replaced by the one rebuilt from
the store (or dropped when the write failed part-way)."""

from __future__ import annotations

import asyncio
from collections import Counter

import redis.asyncio as aioredis

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ExchangeAdapter
from streaming.models import Candle
from streaming.pipeline.config import PipelineConfig
from streaming.pipeline.history import install_history
from streaming.pipeline.history_retry import HistoryRetry
from streaming.pipeline.inflight import InFlight
from streaming.pipeline.streams import StreamStates
from streaming.pipeline.warmup import WarmupReport, fetch_history
from streaming.store.candles import CandleStore
from streaming.timeframes import bucket_start, timeframe_ms


class HistoryInstaller:
    def __init__(self, redis: aioredis.Redis, store: CandleStore, exchange_id: int, exchange_name: str,
                 config: PipelineConfig, states: StreamStates, counters: Counter[str], lock: asyncio.Lock,
                 inflight: InFlight) -> None:
        self.redis = redis
        self.store = store
        self.exchange_id = exchange_id
        self.exchange_name = exchange_name
        self.config = config
        self.states = states
        self.counters = counters
        self._lock = lock
        self._inflight = inflight
        # the streams whose warm-up failed, fetched again in the background (made on the first failure)
        self.retry: HistoryRetry | None = None
        self.retry_backoff = Backoff(2.0, 60.0)  # delays between its attempts

    @property
    def missing(self) -> int:
        """Streams whose warm-up failed and whose history has not come yet."""
        return self.retry.count if self.retry is not None else 0

    async def install(self, symbol: str, tf: str, candles: list[Candle]) -> int:
        """The warm-up's history of one stream; returns how many bars changed the store."""
        if self.states.pool(symbol) is None or not candles:
            return 0
        async with self._lock:
            await self._inflight.settle()
            return await self._install_locked(symbol, tf, candles)

    async def install_late(self, symbol: str, tf: str, candles: list[Candle], live_from: int) -> int:
        """A failed warm-up's history, arrived later: only the bars before the first one the live
        side stored at or after `live_from` (those have their close events), as the warm-up's."""
        pool = self.states.pool(symbol)
        if pool is None or not candles:
            return 0
        async with self._lock:
            await self._inflight.settle()
            stored = await self.store.read(self.exchange_id, symbol, tf, self.config.max_candles, pool.user_ids)
            bound = min((c.timestamp for c in stored if c.timestamp >= live_from), default=live_from)
            older = [c for c in candles if c.timestamp < bound]
            self.counters["history_overlap_skipped"] += len(candles) - len(older)
            return await self._install_locked(symbol, tf, older) if older else 0

    def retry_failed(self, adapter: ExchangeAdapter, report: WarmupReport) -> None:
        """Fetch again, in the background, the streams whose warm-up failed."""
        if not report.errors:
            return
        retry = self._retry(adapter)
        for (symbol, tf), (newest, exc) in report.errors.items():
            # the live side publishes the bars after the newest stored one (or, with none, from
            # the bar forming when the live stream opened)
            live_from = newest + timeframe_ms(tf) if newest is not None else bucket_start(report.now_ms, tf)
            retry.add(symbol, tf, live_from, exc)

    def _retry(self, adapter: ExchangeAdapter) -> HistoryRetry:
        if self.retry is None:
            config = self.config

            async def fetch(symbol: str, tf: str, live_from: int) -> list[Candle]:
                # the warm-up's depth before the live side's first bar (as if the warm-up had
                # worked, so a restart finds the store warm), up to now: the install cuts the overlap
                now = config.clock_ms()
                since = max(0, (bucket_start(now, tf) - live_from) // timeframe_ms(tf))
                return await fetch_history(adapter, symbol, tf, config.warmup_candles + since, now)

            self.retry = HistoryRetry(fetch, self.install_late, self.counters,
                                      concurrency=config.warmup_concurrency, backoff=self.retry_backoff,
                                      name=self.exchange_name)
        return self.retry

    async def _install_locked(self, symbol: str, tf: str, candles: list[Candle]) -> int:
        pool = self.states.pool(symbol)
        if pool is None:
            return 0
        try:
            written, state = await install_history(self.redis, self.store, self.exchange_id, symbol, tf,
                                                    candles, pool, self.config.max_candles)
        except BaseException:
            self.states.rewritten((symbol, tf))  # some of it may have been written
            raise
        self.states.installed((symbol, tf), state)
        return written
