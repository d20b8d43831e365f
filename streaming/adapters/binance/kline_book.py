"""Pure kline closing for Binance: the frame with "x": true closes a bar, exactly once.

Klines are contiguous (a bar exists for every interval), so a frame for a bar later than the
next one owed means closes were lost: `gap_start` tells the shell what to fill over REST.

A stream is its (symbol, timeframe) key: the shell passes the one tuple it made at subscription,
so the book's dicts hold no tuple of their own per stream.
"""

from __future__ import annotations

from collections import Counter

from streaming.adapters.binance.parse import INTERVAL_MS
from streaming.adapters.ledger import ClosedLedger
from streaming.models import Candle, CandleUpdate

Key = tuple[str, str]


class KlineBook:
    """The next bar owed per stream is the bar after its last close, except where `ahead` says
    otherwise (before the first close, after a skip, or for a timeframe of no fixed step): a
    stream in step, as nearly all are, costs the ledger's entry and nothing more. So the ledger
    is the book's alone: a change of a last close outside the book would move the bar owed."""

    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.ledger = ClosedLedger(exchange)
        self.ahead: dict[Key, int] = {}  # the next bar owed, where it is not the one after the last close

    @property
    def counts(self) -> Counter[str]:
        return self.ledger.counts

    def owed(self, key: Key) -> int | None:
        """Open time of the next bar whose close we owe (None: nothing known of the stream)."""
        owed = self.ahead.get(key)
        return self._after_last(key) if owed is None else owed

    def _after_last(self, key: Key) -> int | None:
        """The bar after the stream's last close (None: no close yet, or no fixed step)."""
        last = self.ledger.last_closed.get(key)
        step = INTERVAL_MS.get(key[1])
        return last + step if last is not None and step else None

    def _owe(self, key: Key, owed: int) -> None:
        if owed == self._after_last(key):
            self.ahead.pop(key, None)
        else:
            self.ahead[key] = owed

    def gap_start(self, key: Key, ts: int) -> int | None:
        owed = self.owed(key)
        return owed if owed is not None and ts > owed else None

    def on_kline(self, key: Key, step_ms: int, candle: Candle, closed: bool) -> CandleUpdate | None:
        last = self.ledger.last_closed.get(key)
        if last is not None and candle.timestamp <= last:
            self.ledger.counts["duplicate_closes" if closed else "late_updates"] += 1
            return None
        if closed:
            update = self.ledger.close(key, candle)
            self._owe(key, candle.timestamp + step_ms)
            return update
        if last is None and key not in self.ahead:
            self.ahead[key] = candle.timestamp
        return CandleUpdate(self.exchange, key[0], key[1], candle, False)

    def fill(self, key: Key, step_ms: int, candles: list[Candle]) -> list[CandleUpdate]:
        before = self.owed(key)
        out = self.ledger.fill(key, candles)
        last = self.ledger.last_closed.get(key)
        if last is not None:
            self._owe(key, max(before or 0, last + step_ms))
        return out

    def seed(self, key: Key, step_ms: int, newest: int) -> None:
        """The newest bar already stored (the warm-up's): it counts as closed, and the bars after
        it are owed, so a first live kline later than the next one reveals a gap to fill."""
        before = self.owed(key)
        if newest > self.ledger.last_closed.get(key, newest - 1):
            self.ledger.last_closed[key] = newest
        self._owe(key, max(before or 0, self.ledger.last_closed[key] + step_ms))

    def skip_to(self, key: Key, ts: int) -> None:
        """Give up on bars before `ts` (a gap fill failed, or REST does not have them): a gap is
        filled once, and never blocks live closes forever."""
        before = self.owed(key)
        self._owe(key, ts if before is None else max(before, ts))

    def forget(self, symbol: str) -> None:
        self.ledger.forget(symbol)
        for key in [k for k in self.ahead if k[0] == symbol]:
            del self.ahead[key]
