"""Pure builders of the JSON the pipeline publishes: candle-close events and indicator values."""

from __future__ import annotations

import msgspec

from streaming.indicators.macd_v import MacdVValue
from streaming.models import Candle


class CandleClose(msgspec.Struct, frozen=True, gc=False):
    exchange_id: int
    exchange: str
    symbol: str
    timeframe: str
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    source: str


class IndicatorValue(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    timestamp: int
    macd_v: float | None
    signal: float | None
    histogram: float | None
    fast_ema: float | None
    slow_ema: float | None
    atr: float | None
    stage: str | None
    seeded: bool
    gap_ratio: float
    reason: str | None = None  # only present while macd_v is null


_encode = msgspec.json.Encoder().encode


def close_event_json(exchange_id: int, exchange: str, symbol: str, timeframe: str, c: Candle, source: str) -> bytes:
    return _encode(CandleClose(exchange_id, exchange, symbol, timeframe, c.timestamp, c.open, c.high, c.low,
                               c.close, c.volume, source))


def indicator_json(timestamp: int, v: MacdVValue) -> bytes:
    return _encode(IndicatorValue(timestamp, v.macd_v, v.signal, v.histogram, v.fast_ema, v.slow_ema, v.atr,
                                  v.stage, v.seeded, v.gap_ratio, v.reason if v.macd_v is None else None))
