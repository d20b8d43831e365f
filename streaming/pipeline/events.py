"""Pure builders of the JSON the pipeline publishes: candle-close events and indicator values
(the messages are declared in streaming.contracts.market)."""

from __future__ import annotations

import msgspec

from streaming.contracts.market import CloseEvent as CandleClose
from streaming.contracts.market import IndicatorValue
from streaming.indicators.macd_v import MacdVValue
from streaming.models import Candle, CandleSource

_encode = msgspec.json.Encoder().encode


def close_event_json(exchange_id: int, exchange: str, symbol: str, timeframe: str, c: Candle,
                     source: CandleSource) -> bytes:
    return _encode(CandleClose(exchange_id, exchange, symbol, timeframe, c.timestamp, c.open, c.high, c.low,
                               c.close, c.volume, source))


def indicator_json(timestamp: int, v: MacdVValue) -> bytes:
    return _encode(IndicatorValue(timestamp, v.macd_v, v.signal, v.histogram, v.fast_ema, v.slow_ema, v.atr,
                                  v.stage, v.seeded, v.gap_ratio, v.reason if v.macd_v is None else None))


class _EventHead(msgspec.Struct, frozen=True, gc=False):
    exchange_id: int
    exchange: str
    symbol: str


def symbol_event_open(exchange_id: int, exchange: str, symbol: str) -> bytes:
    """The constant opening of a symbol's close events, up to and including the comma before
    `timeframe`: built once per symbol and shared by its streams, see close_event_from_member."""
    return _encode(_EventHead(exchange_id, exchange, symbol))[:-1] + b","


_TIMEFRAME_PARTS: dict[str, bytes] = {}
_SOURCE_TAILS: dict[str, bytes] = {}


def close_event_from_member(symbol_open: bytes, timeframe: str, member: bytes, source: str) -> bytes:
    """The close event from the symbol's opening (symbol_event_open) and the stored candle member
    (streaming.store.codec.encode_candle: the same six fields in the same order): the bytes of
    close_event_json for the same candle, with prices and volume always written as floats."""
    part = _TIMEFRAME_PARTS.get(timeframe)
    if part is None:
        part = _TIMEFRAME_PARTS[timeframe] = b'"timeframe":' + _encode(timeframe) + b","
    tail = _SOURCE_TAILS.get(source)
    if tail is None:
        tail = _SOURCE_TAILS[source] = b',"source":' + _encode(source) + b"}"
    return b"".join((symbol_open, part, member[1:-1], tail))
