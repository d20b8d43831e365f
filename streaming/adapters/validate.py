"""Pure checks shared by the parsers: turn raw wire values into a sane Candle or raise BadFrame."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from streaming.adapters.skips import (
    ABSURD,
    BAD_NUMBER,
    BAD_PRICE,
    BAD_TIMESTAMP,
    HIGH_LOW,
    INCONSISTENT,
    INVALID_JSON,
    NON_FINITE,
    OVERSIZED,
    SCHEMA,
    TOO_DEEP,
    BadFrame,
)
from streaming.models import Candle

# 2009-01-03 (the first Bitcoin block) .. 2100-01-01: anything outside is a unit mix-up or junk
MIN_TS_MS = 1_230_940_800_000
MAX_TS_MS = 4_102_444_800_000
# no market quotes a price above a trillion nor trades 1e18 units in one bar; beyond these a
# value is junk, and sums of many bars (volumes of aggregated candles) stay finite
MAX_PRICE = 1e12
MAX_VOLUME = 1e18


def to_float(value: object, name: str) -> float:
    if type(value) is str:
        try:
            x = float(value)
        except ValueError:
            raise BadFrame(BAD_NUMBER, f"{name}={value[:40]!r} is not a number") from None
    elif type(value) is float or type(value) is int:
        x = float(value)
    else:
        raise BadFrame(SCHEMA, f"{name} has type {type(value).__name__}")
    if not math.isfinite(x):
        raise BadFrame(NON_FINITE, f"{name}={value!r}")
    return x


def to_int(value: object, name: str) -> int:
    """An integer given as int or as a decimal string (Coinbase sends epoch seconds as strings)."""
    if type(value) is int:
        return value
    if type(value) is str and value.isdigit() and len(value) < 20:
        return int(value)
    if type(value) is str:
        raise BadFrame(BAD_NUMBER, f"{name}={value[:40]!r} is not an integer")
    raise BadFrame(SCHEMA, f"{name} has type {type(value).__name__}")


def check_timestamp(ts_ms: int, step_ms: int | None = None) -> int:
    if not MIN_TS_MS <= ts_ms < MAX_TS_MS:
        raise BadFrame(BAD_TIMESTAMP, f"open time {ts_ms} ms is outside 2009..2100")
    if step_ms is not None and ts_ms % step_ms:
        raise BadFrame(BAD_TIMESTAMP, f"open time {ts_ms} ms is not aligned to {step_ms} ms")
    return ts_ms


def classify(raw: str | bytes, exc: msgspec.ValidationError, numeric_fields: frozenset[str]) -> tuple[str, str]:
    """(kind, detail) of a frame the typed decoder refused (lax decoding reads numeric strings).

    The typed decoder stops at the first type mismatch, which may come before broken JSON
    further on: broken JSON is reported as such.
    """
    message = str(exc)
    try:
        msgspec.json.decode(raw)
    except msgspec.DecodeError as bad:
        return INVALID_JSON, str(bad)
    except RecursionError:
        return TOO_DEEP, "nested too deep"
    except (UnicodeDecodeError, ValueError) as bad:
        return INVALID_JSON, str(bad)
    if message.startswith("Number out of range"):
        return NON_FINITE, message
    field = message.rsplit(".", 1)[-1].strip("`")
    if "got `str`" in message and field in numeric_fields:
        return BAD_NUMBER, message
    return SCHEMA, message


def decode_frame(decoder: msgspec.json.Decoder, raw: str | bytes, max_bytes: int,
                 numeric_fields: frozenset[str]) -> Any:
    """One frame through its typed decoder; an oversized, broken, hostile or mistyped frame raises
    BadFrame and nothing else (msgspec raises RecursionError for deep nesting, UnicodeDecodeError
    for invalid UTF-8 in a string it reads)."""
    if len(raw) > max_bytes:
        raise BadFrame(OVERSIZED, f"{len(raw)} bytes > {max_bytes}")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise BadFrame(*classify(raw, exc, numeric_fields)) from None
    except msgspec.DecodeError as exc:
        raise BadFrame(INVALID_JSON, str(exc)) from None
    except RecursionError:
        raise BadFrame(TOO_DEEP, "nested too deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadFrame(INVALID_JSON, str(exc)[:200]) from None


def fast_candle(ts_ms: int, o: float, h: float, lo: float, c: float, v: float) -> Candle:
    """Candle from already-float values; one cheap check on the hot path, details only on failure.

    The chained comparisons are False for NaN, so they also stand for the finiteness check.
    """
    if 0.0 < lo <= o <= h <= MAX_PRICE and lo <= c <= h and 0.0 <= v <= MAX_VOLUME:
        return Candle(ts_ms, o, h, lo, c, v)
    return make_candle(ts_ms, o, h, lo, c, v)  # names the problem


def make_candle(ts_ms: int, o: object, h: object, lo: object, c: object, v: object) -> Candle:
    op = to_float(o, "open")
    hi = to_float(h, "high")
    low = to_float(lo, "low")
    cl = to_float(c, "close")
    vol = to_float(v, "volume")
    if op <= 0 or hi <= 0 or low <= 0 or cl <= 0:
        raise BadFrame(BAD_PRICE, f"non-positive price o={op} h={hi} l={low} c={cl}")
    if vol < 0:
        raise BadFrame(BAD_PRICE, f"negative volume {vol}")
    if hi < low:
        raise BadFrame(HIGH_LOW, f"high {hi} < low {low}")
    if not (low <= op <= hi and low <= cl <= hi):
        raise BadFrame(INCONSISTENT, f"open {op} or close {cl} outside [low {low}, high {hi}]")
    if hi > MAX_PRICE or vol > MAX_VOLUME:
        raise BadFrame(ABSURD, f"high {hi} or volume {vol} beyond any market")
    return Candle(ts_ms, op, hi, low, cl, vol)


def candles_from_rows(rows: Iterable[Any], to_candle: Callable[[Any], Candle]) -> tuple[list[Candle], int]:
    """A REST page of rows -> candles oldest first, one per open time (the last row of a repeated
    time wins), and how many rows `to_candle` refused with BadFrame."""
    out: dict[int, Candle] = {}
    bad = 0
    for row in rows:
        try:
            c = to_candle(row)
        except BadFrame:
            bad += 1
            continue
        out[c.timestamp] = c
    return [out[t] for t in sorted(out)], bad
