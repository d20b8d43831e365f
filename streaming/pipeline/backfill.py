"""Warm-up glue of CandlePipeline (core.py): warm_up() runs the REST backfill (warmup.py) and
installs each stream's backfilled candles as stored, already published state."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streaming import keys
from streaming.adapters.base import ExchangeAdapter
from streaming.alerts.rules import AlertState
from streaming.models import Candle
from streaming.pipeline.config import BASE
from streaming.pipeline.events import indicator_json
from streaming.pipeline.state import rebuild
from streaming.pipeline.warmup import WarmupReport, run_warm_up
from streaming.timeframes import UnknownTimeframe


class Backfill:
    """CandlePipeline's warm_up()."""

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
