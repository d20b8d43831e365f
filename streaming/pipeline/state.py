"""Per-stream live state (pure): MACD-V, the last candle fed to it, and the alert rules' state."""

from __future__ import annotations

from collections.abc import Sequence

from streaming.alerts.rules import AlertState
from streaming.gaps import GapFillError, fill_gaps, synthetic_between
from streaming.indicators.macd_v import MacdV, MacdVValue
from streaming.models import Candle
from streaming.timeframes import TIMEFRAME_MS


class StreamState:
    """One (symbol, timeframe) of one exchange. `last` is None until a candle was fed."""

    __slots__ = ("alerts", "last", "macd")

    def __init__(self, macd: MacdV | None = None, last: Candle | None = None,
                 alerts: AlertState | None = None) -> None:
        self.macd = macd or MacdV()
        self.last = last
        self.alerts = alerts or AlertState()

    @property
    def last_ts(self) -> int | None:
        return None if self.last is None else self.last.timestamp

    def advance(self, candle: Candle, timeframe: str) -> MacdVValue:
        """Feed one closed candle newer than `last`, after flat synthetic bars for skipped buckets
        (docs macd-v.md: they move the EMAs, not the ATR). The store never sees the synthetic bars."""
        last = self.last
        if last is not None and candle.timestamp - last.timestamp != TIMEFRAME_MS.get(timeframe):
            try:
                for filler in synthetic_between(last, candle.timestamp, timeframe):
                    self.macd.update(filler.high, filler.low, filler.close, True)
            except GapFillError:
                # silent far longer than any gap worth filling: a new history starts here
                self.macd = MacdV()
        value = self.macd.update(candle.high, candle.low, candle.close, candle.synthetic)
        self.last = candle
        return value


def rebuild(candles: Sequence[Candle], timeframe: str, alerts: AlertState | None = None) -> StreamState:
    """State after replaying stored candles (oldest first) with the same gap filling as live."""
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
    state.macd = MacdV.from_candles(filled)
    state.last = candles[-1]
    return state



