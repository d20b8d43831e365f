"""Loading stream state into CandlePipeline (core.py): streams (and aggregators) a batch touches
for the first time are rebuilt from the store, all in one pipelined round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streaming import keys
from streaming.aggregation import TimeframeAggregator
from streaming.alerts.rules import AlertState
from streaming.models import Candle, CandleUpdate
from streaming.pipeline.config import BASE
from streaming.pipeline.state import rebuild
from streaming.store.candles import candle_keys
from streaming.store.codec import decode_candle
from streaming.timeframes import TIMEFRAME_MS, bucket_start

DAY = "1d"


class StateLoading:
    """CandlePipeline's loading of stream state from the store."""

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
