"""What the candle pipeline publishes: candle-close events, indicator values, alerts.

The close script (streaming/store/scripts.py) emits all three for a bar in one atomic call.
Close events are built as bytes from the stored candle for speed
(streaming.pipeline.events.close_event_from_member); they decode as CloseEvent, which a test
checks on events a real pipeline published.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from streaming.contracts.fields import ExchangeId, ExchangeName, IsoTime, OpenTime, Symbol, Timeframe
from streaming.models import CandleSource

Price = Annotated[float, Meta(description="price in the quote currency")]


class CloseEvent(msgspec.Struct, frozen=True, gc=False):
    """One closed bar: published once per (exchange, symbol, timeframe, open time)."""

    exchange_id: ExchangeId
    exchange: ExchangeName
    symbol: Symbol
    timeframe: Timeframe
    timestamp: OpenTime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Annotated[float, Meta(description="traded volume in the base currency")]
    source: Annotated[CandleSource, Meta(description=(
        "where the bar came from: `websocket` the live stream, `rest` a bar filled over REST after a gap "
        "(warm-up history publishes no close events), `aggregate` built from closed 5m bars"))]


class IndicatorValue(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """The latest MACD-V of a stream: the fields of MacdVValue (streaming.indicators) and the
    open time of the bar it was computed at."""

    timestamp: OpenTime
    macd_v: Annotated[float | None, Meta(description="null until enough bars (reason says why)")]
    signal: Annotated[float | None, Meta(description="EMA(9) of macd_v")]
    histogram: Annotated[float | None, Meta(description="macd_v - signal")]
    fast_ema: Annotated[float | None, Meta(description="EMA(12) of close")]
    slow_ema: Annotated[float | None, Meta(description="EMA(26) of close")]
    atr: Annotated[float | None, Meta(description="ATR(26), Wilder's smoothing")]
    stage: Annotated[str | None, Meta(description="the MACD-V stage name (docs/macd-v.md)")]
    seeded: Annotated[bool, Meta(description="the ATR has seen enough real (non-synthetic) bars")]
    gap_ratio: Annotated[float, Meta(description="share of synthetic (gap-filled) bars in the recent window")]
    reason: Annotated[str | None, Meta(description="present only while macd_v is null: why")] = None


class AlertEvent(msgspec.Struct, frozen=True, gc=False):
    """An alert fired by the close of a bar (published once: its id is deterministic)."""

    id: Annotated[str, Meta(description="`{exchange_id}:{symbol}:{timeframe}:{timestamp}:{label}`")]
    source_exchange_id: ExchangeId
    source_exchange: ExchangeName
    symbol: Symbol
    timeframe: Timeframe
    type: Literal["level", "reversal"]
    label: Annotated[str, Meta(description=(
        "level_-200, level_350, ... (the level crossed), reversal_oversold or reversal_overbought"))]
    level: Annotated[int | float | None, Meta(description="the level crossed (null for reversals)")]
    macd_v: float
    signal: float | None
    histogram: float | None
    price: Annotated[float, Meta(description="close of the bar")]
    timestamp: Annotated[OpenTime, Meta(description="open time of the bar whose close fired the alert")]
    triggered_at: Annotated[IsoTime, Meta(description=(
        "wall-clock time the worker raised the alert (ISO 8601, UTC; offline too, where `timestamp` "
        "follows the simulator's clock)"))]


_encode = msgspec.json.Encoder().encode
_alert_decoder = msgspec.json.Decoder(AlertEvent)


def encode_alert(event: AlertEvent) -> bytes:
    return _encode(event)


def decode_alert(raw: bytes | str) -> AlertEvent:
    """Raises msgspec.ValidationError / DecodeError on a malformed payload."""
    return _alert_decoder.decode(raw)
