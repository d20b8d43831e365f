"""Redis storage of closed candles (see candles.py) and the Lua scripts that keep it exact."""

from streaming.store.candles import DEFAULT_MAX_CANDLES, DEFAULT_USER_TTL_S, CandleStore, StoreLimits, candle_keys
from streaming.store.codec import BadCandle, check_candle, decode_candle, encode_candle

__all__ = [
    "DEFAULT_MAX_CANDLES",
    "DEFAULT_USER_TTL_S",
    "BadCandle",
    "CandleStore",
    "StoreLimits",
    "candle_keys",
    "check_candle",
    "decode_candle",
    "encode_candle",
]
