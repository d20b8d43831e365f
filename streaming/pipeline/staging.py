"""Staging closes for the CLOSE_BATCH script: each close's spec (keys, TTL, channel, candle,
close event, MACD-V value, alert state and alerts) is encoded here, one script call runs a whole
batch, and its result codes say which closes were new, duplicates or corrections.

Part of CandlePipeline (core.py); MACD-V and the alert rules run here, before the script, on the
in-memory StreamState of each stream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from streaming import keys
from streaming.alerts.publish import alert_event, encode_alert
from streaming.alerts.rules import evaluate
from streaming.models import Candle, CandleUpdate
from streaming.pipeline.config import SymbolPool
from streaming.pipeline.events import close_event_from_member, close_event_open, indicator_json
from streaming.pipeline.state import StreamState
from streaming.store.candles import candle_keys
from streaming.store.codec import encode_candle
from streaming.timeframes import TIMEFRAME_MS

_encode_spec = msgspec.json.Encoder().encode


class Batch:
    """Closes staged for one call of the CLOSE_BATCH script. `entries` (run loop only) are the
    listener's queue entries it came from, requeued if Redis fails; `task` its call in flight."""

    __slots__ = ("entries", "specs", "staged", "task")

    def __init__(self) -> None:
        self.specs: list[bytes] = []
        self.staged: list[tuple[str, str, Candle, bool]] = []
        self.entries: list[tuple[int, CandleUpdate]] = []
        self.task: asyncio.Future[Any] | None = None


class Staging:
    """CandlePipeline's close specs, script call and result handling."""

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

    def _stage(self, batch: Batch, symbol: str, tf: str, candle: Candle, source: str, pool: SymbolPool) -> None:
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

    def _call(self, batch: Batch) -> Any:
        """The script call of one batch (a coroutine; its result is the string of result codes)."""
        cfg = self.config
        return self._close_batch(keys=[keys.ALERTS_STREAM],
                                 args=[self._alerts_channel, cfg.alerts_stream_maxlen, cfg.max_candles, *batch.specs])

    async def _execute(self, batch: Batch) -> int:
        if not batch.staged:
            return 0
        try:
            results = await self._call(batch)
        except BaseException:
            # the in-memory states already advanced past bars Redis may not have: reload them
            self._forget(batch)
            raise
        return self._finish(batch, results)

    def _finish(self, batch: Batch, results: Any) -> int:
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

