"""Candle <-> the JSON member stored in the candle ZSETs: {timestamp, open, high, low, close, volume}."""

from __future__ import annotations

import msgspec

from streaming.candle_checks import MAX_VALUE, candle_defect
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


class BadCandle(ValueError):
    """A candle that cannot exist; `defect` is the reason of streaming.candle_checks."""

    def __init__(self, message: str, defect: str = "inconsistent") -> None:
        super().__init__(message)
        self.defect = defect


_MESSAGES = {
    "bad_timestamp": "candle open time must be non-negative epoch ms",
    "non_finite": "candle has a non-finite price or volume",
    "out_of_range": f"candle has a price <= 0 or a price or volume above {MAX_VALUE:g}, or a negative volume",
    "inconsistent": "candle is inconsistent (low > high, or open or close outside [low, high])",
}


def check_candle(c: Candle) -> None:
    """Raise BadCandle if `c` cannot exist (streaming.candle_checks): it could corrupt the store,
    the indicator or an aggregate."""
    defect = candle_defect(c)
    if defect is None:
        return
    if defect == "not_a_candle":
        raise BadCandle(f"expected a Candle, got {type(c).__name__}", defect)
    values = (c.timestamp, c.open, c.high, c.low, c.close, c.volume)
    raise BadCandle(f"{_MESSAGES[defect]}: {values!r}", defect)


def encode_candle(c: Candle) -> bytes:
    """The ZSET member. Deterministic bytes for equal candles: the store detects duplicates by them."""
    return _encode(StoredCandle(c.timestamp, float(c.open), float(c.high), float(c.low), float(c.close),
                                float(c.volume)))


def decode_candle(raw: bytes | str) -> Candle:
    s = _decode(raw)
    return Candle(s.timestamp, s.open, s.high, s.low, s.close, s.volume)
