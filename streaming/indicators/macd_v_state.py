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


class MacdV:
    """MACD-V of one (exchange, symbol, timeframe) stream, fed one closed candle at a time.

    Gives the same numbers as `macd_v_series` over the same candles (tests check 1e-9).
    A synthetic candle moves the EMAs of close but has no true range: the ATR carries over.
    """

    __slots__ = (
        "atr",
        "atr_n",
        "atr_sum",
        "bars",
        "fast",
        "fast_sum",
        "gap_mask",
        "prev_close",
        "sig",
        "sig_n",
        "sig_sum",
        "slow",
        "slow_sum",
    )

    def __init__(self) -> None:
        self.bars = 0
        self.fast: float | None = None
        self.fast_sum = 0.0
        self.slow: float | None = None
        self.slow_sum = 0.0
        self.prev_close: float | None = None
        self.atr: float | None = None
        self.atr_n = 0  # observed true ranges counted into the seed (stops at ATR)
        self.atr_sum = 0.0
        self.sig: float | None = None
        self.sig_n = 0
        self.sig_sum = 0.0
        self.gap_mask = 0  # bit i set = the bar i updates ago was synthetic

    def update(self, high: float, low: float, close: float, synthetic: bool = False) -> MacdVValue:
        """Feed one closed candle; raises ValueError (state untouched) on a non-finite price."""
        try:
            finite = math.isfinite(high) and math.isfinite(low) and math.isfinite(close)
        except TypeError:
            finite = False
        if not finite:
            raise ValueError(f"MACD-V input must be finite numbers, got high={high!r} low={low!r} close={close!r}")
        high = float(high)
        low = float(low)
        close = float(close)
        n = self.bars
        if n < FAST:
            self.fast_sum += close
            if n == FAST - 1:
                self.fast = self.fast_sum / FAST
        else:
            self.fast = FAST_ALPHA * close + _FAST_KEEP * self.fast  # type: ignore[operator]
        if n < SLOW:
            self.slow_sum += close
            if n == SLOW - 1:
                self.slow = self.slow_sum / SLOW
        else:
            self.slow = SLOW_ALPHA * close + _SLOW_KEEP * self.slow  # type: ignore[operator]

        if not synthetic:
            pc = self.prev_close
            tr = high - low if pc is None else max(high - low, abs(high - pc), abs(low - pc))
            if self.atr is None:
                self.atr_sum += tr
                self.atr_n += 1
                if self.atr_n == ATR:
                    self.atr = self.atr_sum / ATR
            else:
                self.atr = (self.atr * (ATR - 1) + tr) / ATR
        self.prev_close = close
        self.bars = n + 1
        self.gap_mask = ((self.gap_mask << 1) | (1 if synthetic else 0)) & _GAP_MASK

        mv = self._macd_v()
        if mv is not None:
            # the signal skips null MACD-V (zero volatility) like the ATR skips missing ranges
            if self.sig is None:
                self.sig_sum += mv
                self.sig_n += 1
                if self.sig_n == SIGNAL:
                    self.sig = self.sig_sum / SIGNAL
            else:
                self.sig = SIGNAL_ALPHA * mv + _SIGNAL_KEEP * self.sig
        return self._value(mv)

    def packed(self) -> tuple[Any, ...]:
        """The state as the PACKED_FORMAT values (`from_packed` restores it exactly)."""
        fast, slow, pc, atr, sig = self.fast, self.slow, self.prev_close, self.atr, self.sig
        nulls = ((fast is None) | (slow is None) << 1 | (pc is None) << 2 | (atr is None) << 3
                 | (sig is None) << 4)
        return (self.bars, 0.0 if fast is None else fast, self.fast_sum, 0.0 if slow is None else slow,
                self.slow_sum, 0.0 if pc is None else pc, 0.0 if atr is None else atr, self.atr_sum,
                0.0 if sig is None else sig, self.sig_sum, self.atr_n, self.sig_n, self.gap_mask, nulls)

    @classmethod
    def from_packed(cls, values: Sequence[Any]) -> MacdV:
        self = cls.__new__(cls)
        (self.bars, fast, self.fast_sum, slow, self.slow_sum, pc, atr, self.atr_sum, sig, self.sig_sum,
         self.atr_n, self.sig_n, self.gap_mask, nulls) = values
        self.fast = None if nulls & 1 else fast
        self.slow = None if nulls & 2 else slow
        self.prev_close = None if nulls & 4 else pc
        self.atr = None if nulls & 8 else atr
        self.sig = None if nulls & 16 else sig
        return self

    def update_candle(self, candle: Candle) -> MacdVValue:
        return self.update(candle.high, candle.low, candle.close, candle.synthetic)

    def value(self) -> MacdVValue:
        """The reading after the last update (all null before the first)."""
        return self._value(self._macd_v())

    def _macd_v(self) -> float | None:
        atr = self.atr
        slow = self.slow
        if atr is None or slow is None or atr == 0.0:
            return None
        return (self.fast - slow) / atr * 100.0  # type: ignore[operator]

    def _value(self, mv: float | None) -> MacdVValue:
        n = self.bars
        gap_ratio = self.gap_mask.bit_count() / (n if n < GAP_WINDOW else GAP_WINDOW) if n else 0.0
        seeded = self.atr is not None
        if mv is None:
            if self.slow is None:
                reason = REASON_HISTORY
            elif not seeded:
                reason = REASON_LOW_ACTIVITY
            else:
                reason = REASON_ZERO_VOLATILITY
            return MacdVValue(None, None, None, self.fast, self.slow, self.atr, None, seeded, gap_ratio, reason, n)
        sig = self.sig
        hist = None if sig is None else mv - sig
        return MacdVValue(mv, sig, hist, self.fast, self.slow, self.atr, _stage(mv, sig), seeded, gap_ratio, None, n)

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
        self = cls()
        for name in ("bars", "atr_n", "sig_n", "gap_mask"):
            setattr(self, name, _int_field(data, name))
        for name in ("fast_sum", "slow_sum", "atr_sum", "sig_sum"):
            setattr(self, name, _float_field(data, name, nullable=False))
        for name in ("fast", "slow", "prev_close", "atr", "sig"):
            setattr(self, name, _float_field(data, name, nullable=True))
        if self.gap_mask > _GAP_MASK or self.atr_n > ATR or self.sig_n > SIGNAL:
            raise ValueError("MACD-V state counters out of range")
        if (self.slow is None) != (self.bars < SLOW) or (self.fast is None) != (self.bars < FAST):
            raise ValueError("MACD-V state inconsistent: EMA presence does not match the bar count")
        if self.atr is not None and self.atr < 0:
            raise ValueError("MACD-V state inconsistent: negative ATR")
        return self

    @classmethod
    def from_candles(cls, candles: Iterable[Candle]) -> MacdV:
        """Rebuild the state by replaying candles oldest first (e.g. the stored candle ZSET)."""
        state = cls()
        for c in candles:
            state.update(c.high, c.low, c.close, c.synthetic)
        return state

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
