"""Pure Binance frame parsing: raw text -> BinanceMessage (kline, ack, error, shutdown)."""

from __future__ import annotations

import msgspec

from streaming.adapters.binance import schemas as s
from streaming.adapters.skips import (
    EXCHANGE_ERROR,
    SCHEMA,
    UNKNOWN_INTERVAL,
    BadFrame,
)
from streaming.adapters.validate import MAX_TS_MS, MIN_TS_MS, check_timestamp, decode_frame, fast_candle
from streaming.models import Candle

MAX_FRAME_BYTES = 1024 * 1024

# every native kline interval; None = not aligned to a fixed step (weeks start Monday, months vary)
INTERVAL_MS: dict[str, int | None] = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000, "8h": 28_800_000,
    "12h": 43_200_000, "1d": 86_400_000, "3d": None, "1w": None, "1M": None,
}

_frame = msgspec.json.Decoder(s.Frame, strict=False)
NUMERIC = frozenset({"o", "c", "h", "l", "v"})

KLINE, ACK, ERROR, SHUTDOWN, OTHER = "kline", "ack", "error", "shutdown", "other"


class BinanceMessage(msgspec.Struct, gc=False):
    kind: str
    symbol: str = ""
    interval: str = ""
    candle: Candle | None = None
    closed: bool = False
    id: int | str | None = None
    error: str = ""


def parse_frame(raw: str | bytes, max_bytes: int = MAX_FRAME_BYTES) -> BinanceMessage:
    """Parse one WebSocket frame. Raises BadFrame for an unusable frame, and nothing else."""
    try:
        f = decode_frame(_frame, raw, max_bytes, NUMERIC)
        event = f.data
        if event is not None:
            kind = event.e
            kline = event.k
        else:
            kind = f.e
            kline = f.k
        if kind == "kline":
            if kline is None:
                raise BadFrame(SCHEMA, "kline event without k")
            step = INTERVAL_MS.get(kline.i, 0)
            ts = kline.t
            if step and kline.s and MIN_TS_MS <= ts < MAX_TS_MS and not ts % step:  # the hot path
                return BinanceMessage(KLINE, kline.s, kline.i,
                                      fast_candle(ts, kline.o, kline.h, kline.l, kline.c, kline.v), kline.x)
            return _kline(kline)
        if kind == "serverShutdown":
            return BinanceMessage(SHUTDOWN)
        error = _error(f)
        if f.id is not None:
            return BinanceMessage(ERROR, id=f.id, error=error) if error else BinanceMessage(ACK, id=f.id)
        if error:
            raise BadFrame(EXCHANGE_ERROR, error)
        return BinanceMessage(OTHER)
    except BadFrame:
        raise
    except Exception as exc:  # whatever arrives, nothing but BadFrame leaves a parser
        raise BadFrame(SCHEMA, f"unusable frame ({type(exc).__name__}: {str(exc)[:100]})") from None


def _error(f: s.Frame) -> str:
    if f.error is not None:
        return f"{f.error.code}: {f.error.msg}"[:300]
    if f.code is not None:
        return f"{f.code}: {f.msg}"[:300]
    return ""


def _kline(k: s.Kline) -> BinanceMessage:
    if k.i not in INTERVAL_MS:
        raise BadFrame(UNKNOWN_INTERVAL, f"interval {k.i[:20]!r}")
    if not k.s:
        raise BadFrame(SCHEMA, "kline without symbol")
    candle = fast_candle(check_timestamp(k.t, INTERVAL_MS[k.i]), k.o, k.h, k.l, k.c, k.v)
    return BinanceMessage(KLINE, symbol=k.s, interval=k.i, candle=candle, closed=k.x)
