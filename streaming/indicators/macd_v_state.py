"""Incremental MACD-V: O(1) plain-float update per closed candle, persistable as a JSON dict."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from streaming.indicators.params import (
    ATR,
    FAST,
    FAST_ALPHA,
    GAP_WINDOW,
    REASON_HISTORY,
    REASON_LOW_ACTIVITY,
    REASON_ZERO_VOLATILITY,
    SIGNAL,
    SIGNAL_ALPHA,
    SLOW,
    SLOW_ALPHA,
)
from streaming.indicators.stage import stage as _stage
from streaming.models import Candle

_GAP_MASK = (1 << GAP_WINDOW) - 1
_STATE_VERSION = 1
_FAST_KEEP = 1.0 - FAST_ALPHA
_SLOW_KEEP = 1.0 - SLOW_ALPHA
_SIGNAL_KEEP = 1.0 - SIGNAL_ALPHA
# The state as 14 plain values for a compact store (a worker keeps thousands of streams, and a
# boxed float costs 32 bytes for its 8): bars, the nine floats (a null one as 0.0), atr_n, sig_n,
# gap_mask, and one bit per nullable float that is null. Round-trips exactly.
PACKED_FORMAT = "Q9dHHIB"


class MacdVValue(msgspec.Struct, frozen=True, gc=False):
    """One MACD-V reading. Null fields mean "not defined yet"; `reason` says why MACD-V is null."""

    macd_v: float | None
    signal: float | None
    histogram: float | None
    fast_ema: float | None
    slow_ema: float | None
    atr: float | None
    stage: str | None
    seeded: bool  # the ATR has seen enough observed (non-synthetic) true ranges
    gap_ratio: float  # share of synthetic bars among the last GAP_WINDOW bars
    reason: str | None = None
    bars: int = 0  # candles fed so far


# The packed state, in PACKED_FORMAT's order: bars fed; fast EMA and its seed sum; slow EMA and
# its seed sum; the previous close; ATR and its seed sum; signal and its seed sum; atr_n (observed
# true ranges counted into the ATR's seed, stops at ATR); sig_n (the same for the signal);
# gap_mask (bit i set = the bar i updates ago was synthetic); nulls, one bit per value above
# still undefined (its slot then holds 0.0):
_NULL_FAST, _NULL_SLOW, _NULL_PREV, _NULL_ATR, _NULL_SIG = 1, 2, 4, 8, 16
_ALL_NULL = 31
# the packed state before the first candle
EMPTY_PACKED: tuple[Any, ...] = (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, _ALL_NULL)


def step(s: tuple[Any, ...], high: float, low: float, close: float,
         synthetic: bool = False) -> tuple[tuple[Any, ...], MacdVValue]:
    """The one MACD-V update rule, on the packed state (PACKED_FORMAT's values): the state after
    one more closed candle and its reading. Raises ValueError on a non-finite price (nothing is
    returned, so no state changes). Pure: the live side keeps thousands of states packed and
    updates them without building an object."""
    try:
        finite = math.isfinite(high) and math.isfinite(low) and math.isfinite(close)
    except TypeError:
        finite = False
    if not finite:
        raise ValueError(f"MACD-V input must be finite numbers, got high={high!r} low={low!r} close={close!r}")
    high = float(high)
    low = float(low)
    close = float(close)
    n, fast, fast_sum, slow, slow_sum, pc, atr, atr_sum, sig, sig_sum, atr_n, sig_n, gap_mask, nulls = s
    if n < FAST:
        fast_sum += close
        if n == FAST - 1:
            fast = fast_sum / FAST
            nulls &= ~_NULL_FAST
    else:
        fast = FAST_ALPHA * close + _FAST_KEEP * fast
    if n < SLOW:
        slow_sum += close
        if n == SLOW - 1:
            slow = slow_sum / SLOW
            nulls &= ~_NULL_SLOW
    else:
        slow = SLOW_ALPHA * close + _SLOW_KEEP * slow
    if not synthetic:
        tr = high - low if nulls & _NULL_PREV else max(high - low, abs(high - pc), abs(low - pc))
        if nulls & _NULL_ATR:
            atr_sum += tr
            atr_n += 1
            if atr_n == ATR:
                atr = atr_sum / ATR
                nulls &= ~_NULL_ATR
        else:
            atr = (atr * (ATR - 1) + tr) / ATR
    nulls &= ~_NULL_PREV
    gap_mask = ((gap_mask << 1) | (1 if synthetic else 0)) & _GAP_MASK
    mv = _macd_v(fast, slow, atr, nulls)
    if mv is not None:
        # the signal skips null MACD-V (zero volatility) like the ATR skips missing ranges
        if nulls & _NULL_SIG:
            sig_sum += mv
            sig_n += 1
            if sig_n == SIGNAL:
                sig = sig_sum / SIGNAL
                nulls &= ~_NULL_SIG
        else:
            sig = SIGNAL_ALPHA * mv + _SIGNAL_KEEP * sig
    s = (n + 1, fast, fast_sum, slow, slow_sum, close, atr, atr_sum, sig, sig_sum, atr_n, sig_n, gap_mask, nulls)
    return s, _reading(s, mv)


def _macd_v(fast: float, slow: float, atr: float, nulls: int) -> float | None:
    """MACD-V of the packed values; None until the slow EMA and the ATR exist, and at zero ATR."""
    if nulls & (_NULL_ATR | _NULL_SLOW) or atr == 0.0:
        return None
    return (fast - slow) / atr * 100.0


def reading(s: tuple[Any, ...]) -> MacdVValue:
    """The reading of a packed state (all null before the first candle)."""
    return _reading(s, _macd_v(s[1], s[3], s[6], s[13]))


def _reading(s: tuple[Any, ...], mv: float | None) -> MacdVValue:
    n, fast, _, slow, _, _, atr, _, sig, _, _, _, gap_mask, nulls = s
    gap_ratio = gap_mask.bit_count() / (n if n < GAP_WINDOW else GAP_WINDOW) if n else 0.0
    seeded = not nulls & _NULL_ATR
    fast_v = None if nulls & _NULL_FAST else fast
    if mv is None:
        if nulls & _NULL_SLOW:
            return MacdVValue(None, None, None, fast_v, None, atr if seeded else None, None, seeded, gap_ratio,
                              REASON_HISTORY, n)
        if not seeded:
            return MacdVValue(None, None, None, fast_v, slow, None, None, seeded, gap_ratio, REASON_LOW_ACTIVITY,
                              n)
        return MacdVValue(None, None, None, fast_v, slow, atr, None, seeded, gap_ratio, REASON_ZERO_VOLATILITY, n)
    if nulls & _NULL_SIG:
        return MacdVValue(mv, None, None, fast_v, slow, atr, _stage(mv, None), seeded, gap_ratio, None, n)
    return MacdVValue(mv, sig, mv - sig, fast_v, slow, atr, _stage(mv, sig), seeded, gap_ratio, None, n)


class MacdV:
    """MACD-V of one (exchange, symbol, timeframe) stream, fed one closed candle at a time: a
    holder of the packed state that `step` advances.

    Gives the same numbers as `macd_v_series` over the same candles (tests check 1e-9).
    A synthetic candle moves the EMAs of close but has no true range: the ATR carries over.
    """

    __slots__ = ("_s",)

    def __init__(self) -> None:
        self._s = EMPTY_PACKED

    def update(self, high: float, low: float, close: float, synthetic: bool = False) -> MacdVValue:
        """Feed one closed candle; raises ValueError (state untouched) on a non-finite price."""
        self._s, value = step(self._s, high, low, close, synthetic)
        return value

    def packed(self) -> tuple[Any, ...]:
        """The state as the PACKED_FORMAT values (`from_packed` restores it exactly)."""
        return self._s

    @classmethod
    def from_packed(cls, values: Sequence[Any]) -> MacdV:
        self = cls.__new__(cls)
        self._s = tuple(values)
        return self

    def update_candle(self, candle: Candle) -> MacdVValue:
        return self.update(candle.high, candle.low, candle.close, candle.synthetic)

    def value(self) -> MacdVValue:
        """The reading after the last update (all null before the first)."""
        return reading(self._s)

    def _nullable(self, i: int, bit: int) -> float | None:
        return None if self._s[13] & bit else self._s[i]

    bars = property(lambda self: self._s[0])
    fast = property(lambda self: self._nullable(1, _NULL_FAST))
    fast_sum = property(lambda self: self._s[2])
    slow = property(lambda self: self._nullable(3, _NULL_SLOW))
    slow_sum = property(lambda self: self._s[4])
    prev_close = property(lambda self: self._nullable(5, _NULL_PREV))
    atr = property(lambda self: self._nullable(6, _NULL_ATR))
    atr_sum = property(lambda self: self._s[7])
    sig = property(lambda self: self._nullable(8, _NULL_SIG))
    sig_sum = property(lambda self: self._s[9])
    atr_n = property(lambda self: self._s[10])
    sig_n = property(lambda self: self._s[11])
    gap_mask = property(lambda self: self._s[12])

    # --- persistence -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe snapshot (finite floats, ints, nulls) that `from_dict` restores exactly."""
        return {
            "v": _STATE_VERSION,
            "bars": self.bars,
            "fast": self.fast,
            "fast_sum": self.fast_sum,
            "slow": self.slow,
            "slow_sum": self.slow_sum,
            "prev_close": self.prev_close,
            "atr": self.atr,
            "atr_n": self.atr_n,
            "atr_sum": self.atr_sum,
            "sig": self.sig,
            "sig_n": self.sig_n,
            "sig_sum": self.sig_sum,
            "gap_mask": self.gap_mask,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MacdV:
        """Restore a snapshot; raises ValueError naming the bad field rather than half-loading."""
        if not isinstance(data, Mapping):
            raise ValueError(f"MACD-V state must be a mapping, got {type(data).__name__}")
        if data.get("v") != _STATE_VERSION:
            raise ValueError(f"MACD-V state version {data.get('v')!r} not supported (expected {_STATE_VERSION})")
        ints = {name: _int_field(data, name) for name in ("bars", "atr_n", "sig_n", "gap_mask")}
        sums = {name: _float_field(data, name, nullable=False)
                for name in ("fast_sum", "slow_sum", "atr_sum", "sig_sum")}
        vals = {name: _float_field(data, name, nullable=True) for name in ("fast", "slow", "prev_close", "atr", "sig")}
        if ints["gap_mask"] > _GAP_MASK or ints["atr_n"] > ATR or ints["sig_n"] > SIGNAL:
            raise ValueError("MACD-V state counters out of range")
        bars = ints["bars"]
        if (vals["slow"] is None) != (bars < SLOW) or (vals["fast"] is None) != (bars < FAST):
            raise ValueError("MACD-V state inconsistent: EMA presence does not match the bar count")
        if vals["atr"] is not None and vals["atr"] < 0:
            raise ValueError("MACD-V state inconsistent: negative ATR")
        nulls = sum(bit for name, bit in (("fast", _NULL_FAST), ("slow", _NULL_SLOW), ("prev_close", _NULL_PREV),
                                          ("atr", _NULL_ATR), ("sig", _NULL_SIG)) if vals[name] is None)
        f = {name: 0.0 if v is None else v for name, v in vals.items()}
        return cls.from_packed((bars, f["fast"], sums["fast_sum"], f["slow"], sums["slow_sum"], f["prev_close"],
                                f["atr"], sums["atr_sum"], f["sig"], sums["sig_sum"], ints["atr_n"], ints["sig_n"],
                                ints["gap_mask"], nulls))

    @classmethod
    def from_candles(cls, candles: Iterable[Candle]) -> MacdV:
        """Rebuild the state by replaying candles oldest first (e.g. the stored candle ZSET)."""
        s = EMPTY_PACKED
        for c in candles:
            s = step(s, c.high, c.low, c.close, c.synthetic)[0]
        return cls.from_packed(s)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MacdV):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MacdV(bars={self.bars}, value={self.value()!r})"


def _int_field(data: Mapping[str, Any], name: str) -> int:
    v = data.get(name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"MACD-V state field {name!r} must be a non-negative integer, got {v!r}")
    return v


def _float_field(data: Mapping[str, Any], name: str, *, nullable: bool) -> float | None:
    if name not in data:
        raise ValueError(f"MACD-V state field {name!r} is missing")
    v = data[name]
    if v is None and nullable:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"MACD-V state field {name!r} must be a finite number, got {v!r}")
    return float(v)
