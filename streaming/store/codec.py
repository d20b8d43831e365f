"""Candle <-> the JSON member stored in the candle ZSETs: {timestamp, open, high, low, close, volume}."""

from __future__ import annotations

import math

import msgspec

from streaming.models import Candle


class StoredCandle(msgspec.Struct, frozen=True, gc=False):
    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StoredCandle).decode


_isfinite = math.isfinite


class BadCandle(ValueError):
    pass


def check_candle(c: Candle) -> None:
    """Raise BadCandle if `c` could corrupt the store or the indicator (NaN, inf, inverted range)."""
    if not isinstance(c, Candle):
        raise BadCandle(f"expected a Candle, got {type(c).__name__}")
    if isinstance(c.timestamp, bool) or not isinstance(c.timestamp, int) or c.timestamp < 0:
        raise BadCandle(f"candle open time must be non-negative epoch ms, got {c.timestamp!r}")
    try:
        finite = (_isfinite(c.open) and _isfinite(c.high) and _isfinite(c.low) and _isfinite(c.close)
                  and _isfinite(c.volume))
    except TypeError:
        finite = False
    if not finite:
        values = (c.open, c.high, c.low, c.close, c.volume)
        raise BadCandle(f"candle at {c.timestamp} has a non-finite price or volume: {values!r}")
    if c.low > c.high or c.volume < 0:
        raise BadCandle(f"candle at {c.timestamp} is inconsistent (low > high or negative volume)")


def encode_candle(c: Candle) -> bytes:
    """The ZSET member. Deterministic bytes for equal candles: the store detects duplicates by them."""
    return _encode(StoredCandle(c.timestamp, float(c.open), float(c.high), float(c.low), float(c.close),
                                float(c.volume)))


def decode_candle(raw: bytes | str) -> Candle:
    s = _decode(raw)
    return Candle(s.timestamp, s.open, s.high, s.low, s.close, s.volume)
