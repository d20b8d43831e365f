"""The integrity audit's logic (pure): stored closed candles against the exchange's own.

The store keeps floats parsed from the exchange's decimal strings (streaming.store.codec), and
the REST client parses the same strings the same way, so a native bar that was stored right is
equal to the last bit. Aggregated bars (15m..1d built from 5m) carry a volume summed in floating
point, hence a relative tolerance: far below one price tick, far above rounding noise, and the
same notion of "the same bar" as the worker's own reconciliation of aggregated closes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from streaming.candle_checks import candle_defect
from streaming.models import Candle

PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = (*PRICE_FIELDS, "volume")

DEFAULT_PRICE_REL_TOL = 1e-9
DEFAULT_VOLUME_REL_TOL = 1e-6
# values this close to zero are equal whatever their ratio (a zero-volume bar against 1e-15)
ABS_TOL = 1e-12

# mismatch: both have the bar, values differ; missing: the exchange has it, the store does not
# (a hole); unconfirmed: the store has a bar the exchange does not serve
DifferenceKind = Literal["mismatch", "missing", "unconfirmed"]


class AuditInputError(ValueError):
    """Input the audit cannot judge (two different bars for one open time, a bad tolerance...)."""


@dataclass(frozen=True)
class Tolerance:
    price_rel: float = DEFAULT_PRICE_REL_TOL
    volume_rel: float = DEFAULT_VOLUME_REL_TOL

    def __post_init__(self) -> None:
        for name in ("price_rel", "volume_rel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < 1):
                raise AuditInputError(f"{name} must be a relative tolerance in [0, 1), got {value!r}")


@dataclass(frozen=True)
class BarDifference:
    """One open time where the store and the exchange disagree."""

    timestamp: int
    kind: DifferenceKind
    stored: Candle | None
    exchange: Candle | None
    fields: tuple[str, ...] = ()  # the differing fields of a mismatch, in FIELDS order

    @property
    def repair(self) -> Candle | None:
        """The bar to store instead: the exchange's, when it has one."""
        return self.exchange


def _close(a: float, b: float, rel: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=ABS_TOL) if rel > 0 else a == b


def differing_fields(stored: Candle, exchange: Candle, tolerance: Tolerance = Tolerance()) -> tuple[str, ...]:
    """The OHLCV fields of two bars of one open time that differ beyond `tolerance`."""
    out = [f for f in PRICE_FIELDS if not _close(getattr(stored, f), getattr(exchange, f), tolerance.price_rel)]
    if not _close(stored.volume, exchange.volume, tolerance.volume_rel):
        out.append("volume")
    return tuple(out)


def _by_open_time(candles: Iterable[Candle], side: str, start_ms: int, end_ms: int) -> dict[int, Candle]:
    out: dict[int, Candle] = {}
    for c in candles:
        if not isinstance(c, Candle):
            raise AuditInputError(f"{side}: expected Candle values, got {type(c).__name__}")
        if not start_ms <= c.timestamp < end_ms:
            continue
        if side == "exchange" and (c.synthetic or candle_defect(c) is not None):
            # a flat filler is no exchange data, and a bar that cannot exist never replaces ours
            continue
        seen = out.get(c.timestamp)
        if seen is not None and seen != c:
            raise AuditInputError(f"{side}: two different bars open at {c.timestamp}: {seen!r} and {c!r}")
        out[c.timestamp] = c
    return out


def compare_candles(stored: Sequence[Candle], exchange: Sequence[Candle], start_ms: int, end_ms: int,
                    tolerance: Tolerance = Tolerance()) -> list[BarDifference]:
    """Every open time in [start_ms, end_ms) where the stored bars and the exchange's differ,
    oldest first. Exchange bars that are synthetic or cannot exist count as absent."""
    if start_ms > end_ms:
        raise AuditInputError(f"empty window: start {start_ms} is after end {end_ms}")
    ours = _by_open_time(stored, "stored", start_ms, end_ms)
    theirs = _by_open_time(exchange, "exchange", start_ms, end_ms)
    out: list[BarDifference] = []
    for ts in sorted(ours.keys() | theirs.keys()):
        mine, real = ours.get(ts), theirs.get(ts)
        if mine is None:
            out.append(BarDifference(ts, "missing", None, real))
        elif real is None:
            out.append(BarDifference(ts, "unconfirmed", mine, None))
        else:
            fields = differing_fields(mine, real, tolerance)
            if fields:
                out.append(BarDifference(ts, "mismatch", mine, real, fields))
    return out


def audit_window(stored: Sequence[Candle], timeframe_ms: int) -> tuple[int, int] | None:
    """[open of the oldest, end of the newest) of a stream's sampled bars (oldest first), or None
    when nothing is stored. Bars newer than the newest stored one are the worker's to close, not
    the audit's to report."""
    if not stored:
        return None
    if timeframe_ms <= 0:
        raise AuditInputError(f"timeframe must be a positive number of ms, got {timeframe_ms!r}")
    return stored[0].timestamp, stored[-1].timestamp + timeframe_ms


def sample_symbols(symbols: Sequence[str], k: int, rotation: int) -> list[str]:
    """`k` of `symbols` (all when there are no more), in order; `rotation` shifts the window by k
    each time, so runs numbered 0, 1, 2... cover every symbol in turn."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise AuditInputError(f"symbols per run must be a positive integer, got {k!r}")
    unique = list(dict.fromkeys(symbols))
    if k >= len(unique):
        return unique
    start = (rotation * k) % len(unique)
    return [unique[(start + i) % len(unique)] for i in range(k)]
