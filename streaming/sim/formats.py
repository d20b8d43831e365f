"""Wire shapes of both exchanges, as seen in the recordings: strings vs numbers, key order. Pure."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from streaming.sim.series import VOLUME_QUANTUM, Bar

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# ---- Coinbase -------------------------------------------------------------------------------

def cb_number(x: float, decimals: int = 8) -> str:
    """Coinbase prints decimals without trailing zeros ("1916.6", "126296")."""
    s = f"{x:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def _split_ns(ns: int) -> tuple[str, int]:
    secs, frac = divmod(ns, 1_000_000_000)
    base = (_EPOCH + dt.timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%S")
    return base, frac


def cb_timestamp(ns: int) -> str:
    """RFC3339 with up to nine fraction digits, trailing zeros trimmed (Go's RFC3339Nano)."""
    base, frac = _split_ns(ns)
    if frac == 0:
        return base + "Z"
    return f"{base}.{frac:09d}".rstrip("0") + "Z"


def cb_current_time(ns: int, uptime_ns: int) -> str:
    """Go's time.String(), as in the heartbeats recording."""
    base, frac = _split_ns(ns)
    up_s, up_frac = divmod(max(uptime_ns, 0), 1_000_000_000)
    return f"{base.replace('T', ' ')}.{frac:09d} +0000 UTC m=+{up_s}.{up_frac:09d}"


def cb_candle(bar: Bar, product_id: str, decimals: int) -> dict[str, str]:
    return {
        "start": str(bar.t // 1000),
        "high": cb_number(bar.h, decimals),
        "low": cb_number(bar.l, decimals),
        "open": cb_number(bar.o, decimals),
        "close": cb_number(bar.c, decimals),
        "volume": cb_number(bar.v),
        "product_id": product_id,
    }


def cb_rest_candle(bar: Bar, decimals: int) -> dict[str, str]:
    # REST rows carry no product_id and list low/high first (rest_get_product_candles.json)
    return {
        "start": str(bar.t // 1000),
        "low": cb_number(bar.l, decimals),
        "high": cb_number(bar.h, decimals),
        "open": cb_number(bar.o, decimals),
        "close": cb_number(bar.c, decimals),
        "volume": cb_number(bar.v),
    }


def cb_frame(channel: str, ts_ns: int, sequence_num: int, events: list[Any]) -> dict[str, Any]:
    return {"channel": channel, "timestamp": cb_timestamp(ts_ns), "sequence_num": sequence_num, "events": events}


def cb_error(error: str, message: str, details: str = "") -> dict[str, str]:
    """The `error_response` shape of rest_default_failure_response.json."""
    return {"error": error, "message": message, "error_details": details}


# ---- Binance --------------------------------------------------------------------------------

def bn_number(x: float) -> str:
    return f"{x:.8f}"


def _taker(v: float) -> float:
    return math.floor(v * VOLUME_QUANTUM / 2) / VOLUME_QUANTUM


def _trade_ids(bar: Bar) -> tuple[int, int]:
    if bar.trades == 0:
        return -1, -1
    first = (bar.t // 300_000) * 64
    return first, first + bar.trades - 1


def bn_kline(symbol: str, interval: str, bar: Bar, step_ms: int, closed: bool, event_ms: int) -> dict[str, Any]:
    mid = (bar.o + bar.c) / 2
    taker = _taker(bar.v)
    first, last = _trade_ids(bar)
    return {
        "e": "kline",
        "E": event_ms,
        "s": symbol,
        "k": {
            "t": bar.t, "T": bar.t + step_ms - 1, "s": symbol, "i": interval, "f": first, "L": last,
            "o": bn_number(bar.o), "c": bn_number(bar.c), "h": bn_number(bar.h), "l": bn_number(bar.l),
            "v": bn_number(bar.v), "n": bar.trades, "x": closed, "q": bn_number(bar.v * mid),
            "V": bn_number(taker), "Q": bn_number(taker * mid), "B": "0",
        },
    }


def bn_kline_row(bar: Bar, step_ms: int) -> list[Any]:
    mid = (bar.o + bar.c) / 2
    taker = _taker(bar.v)
    return [bar.t, bn_number(bar.o), bn_number(bar.h), bn_number(bar.l), bn_number(bar.c), bn_number(bar.v),
            bar.t + step_ms - 1, bn_number(bar.v * mid), bar.trades, bn_number(taker), bn_number(taker * mid), "0"]


def bn_error(code: int, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg}
