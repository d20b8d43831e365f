"""Per-stream live state (pure): MACD-V, the last candle fed to it, and the alert rules' state."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streaming.alerts.rules import AlertState
from streaming.gaps import GapFillError, fill_gaps, synthetic_between
from streaming.indicators.macd_v import MacdV, MacdVValue
from streaming.indicators.macd_v_state import EMPTY_PACKED, PACKED_FORMAT, step
from streaming.models import Candle
from streaming.timeframes import TIMEFRAME_MS

if TYPE_CHECKING:
    from streaming.pipeline.staging import StreamHead

# the packed state of a stream: MACD-V (streaming.indicators.macd_v_state), then the last candle's
# prices and synthetic flag; little-endian without padding
_MACD = struct.Struct("<" + PACKED_FORMAT)
_LAST = struct.Struct("<5d?")
_LAYOUT = struct.Struct("<" + PACKED_FORMAT + "5d?")
_EMPTY = _LAYOUT.pack(*EMPTY_PACKED, 0.0, 0.0, 0.0, 0.0, 0.0, False)
_NO_ALERTS = AlertState()  # frozen: every stream without alert state yet shares it


class StreamState:
    """One (symbol, timeframe) of one exchange. `last` is None until a candle was fed.

    Compact because a worker holds thousands of these: MACD-V's 14 values and the last candle's
    prices are one packed bytes object (boxed, they were ~20 objects of 32 bytes or more) and the
    last candle's open time is `last_ts` (the int the candle came with, shared with the adapter's
    books). `advance` steps MACD-V on the unpacked values; `macd` and `last` build a MacdV and a
    Candle from them on each read: change the state through `advance` or by assigning them, never
    by mutating what they return. `head` is the stream's encoded close prefixes, which
    StreamStates caches here: one record per stream.
    `alerts` given is what Redis holds; without it the state starts fresh and not stored."""

    __slots__ = ("_packed", "alerts", "head", "last_ts")

    def __init__(self, macd: MacdV | None = None, last: Candle | None = None,
                 alerts: AlertState | None = None) -> None:
        self.alerts = alerts or _NO_ALERTS
        self.head: StreamHead | None = None
        if macd is None and last is None:
            self.last_ts: int | None = None
            self._packed = _EMPTY
        else:
            self.put(macd or MacdV(), last)

    def put(self, macd: MacdV, last: Candle | None) -> None:
        """Replace MACD-V and the last candle."""
        self._put(macd.packed(), last)

    def _put(self, macd: tuple[Any, ...], last: Candle | None) -> None:
        """Replace MACD-V (its packed values) and the last candle."""
        if last is None:
            self.last_ts = None
            self._packed = _LAYOUT.pack(*macd, 0.0, 0.0, 0.0, 0.0, 0.0, False)
        else:
            self.last_ts = last.timestamp
            self._packed = _LAYOUT.pack(*macd, last.open, last.high, last.low, last.close, last.volume,
                                        last.synthetic)

    @property
    def alerts_stored(self) -> bool:
        """Redis holds `alerts` whole (read from there, or written by a close or the warm-up),
        so a close need only write the fields it changes. Told by identity, not by a flag: every
        state the alert rules return is a new object, and only a stream never stored holds the
        shared fresh one (a slot would cost each of thousands of streams 16 bytes)."""
        return self.alerts is not _NO_ALERTS

    @property
    def macd(self) -> MacdV:
        return MacdV.from_packed(_MACD.unpack_from(self._packed))

    @macd.setter
    def macd(self, macd: MacdV) -> None:
        self.put(macd, self.last)

    @property
    def last(self) -> Candle | None:
        ts = self.last_ts
        if ts is None:
            return None
        return Candle(ts, *_LAST.unpack_from(self._packed, _MACD.size))

    @last.setter
    def last(self, last: Candle | None) -> None:
        self.put(self.macd, last)

    def advance(self, candle: Candle, timeframe: str) -> MacdVValue:
        """Feed one closed candle newer than `last`, after flat synthetic bars for skipped buckets
        (docs macd-v.md: they move the EMAs, not the ATR). The store never sees the synthetic bars.
        MACD-V steps on the packed values: no object is built on the hot path."""
        last_ts = self.last_ts
        macd = _MACD.unpack_from(self._packed)
        try:
            if last_ts is not None and candle.timestamp - last_ts != TIMEFRAME_MS.get(timeframe):
                try:  # a gap, filled from the last candle
                    for filler in synthetic_between(self.last, candle.timestamp, timeframe):  # type: ignore[arg-type]
                        macd = step(macd, filler.high, filler.low, filler.close, True)[0]
                except GapFillError:
                    # silent far longer than any gap worth filling: a new history starts here
                    macd = EMPTY_PACKED
            macd, value = step(macd, candle.high, candle.low, candle.close, candle.synthetic)
        except BaseException:
            self._put(macd, self.last)  # what MACD-V took before failing stays, as it always did
            raise
        self._put(macd, candle)
        return value


def rebuild(candles: Sequence[Candle], timeframe: str, alerts: AlertState | None = None) -> StreamState:
    """State after replaying stored candles (oldest first) with the same gap filling as live;
    `alerts`: what Redis holds (None: nothing)."""
    state = StreamState(alerts=alerts)
    if not candles:
        return state
    try:
        filled = fill_gaps(candles, timeframe)
    except GapFillError:
        filled = list(candles[-1:])  # unusable history (huge gap): restart from the newest bar
        for i in range(len(candles) - 1, 0, -1):
            try:
                filled = fill_gaps(candles[i - 1:], timeframe)
            except GapFillError:
                break
    state.put(MacdV.from_candles(filled), candles[-1])
    return state
