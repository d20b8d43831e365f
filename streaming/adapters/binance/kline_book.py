"""Pure kline closing for Binance: the frame with "x": true closes a bar, exactly once.

Klines are contiguous (a bar exists for every interval), so a frame for a bar later than the
next one owed means closes were lost: `gap_start` tells the shell what to fill over REST.

A stream is its (symbol, timeframe) key: the shell passes the one tuple it made at subscription,
so the book's dicts hold no tuple of their own per stream.
"""

from __future__ import annotations

from collections import Counter

from streaming.adapters.ledger import ClosedLedger
from streaming.models import Candle, CandleUpdate

Key = tuple[str, str]


class KlineBook:
    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.ledger = ClosedLedger(exchange)
        # open time of the next bar whose close we owe, per (symbol, timeframe)
        self.owed: dict[Key, int] = {}

    @property
    def counts(self) -> Counter[str]:
        return self.ledger.counts

    def gap_start(self, key: Key, ts: int) -> int | None:
        owed = self.owed.get(key)
        return owed if owed is not None and ts > owed else None

    def on_kline(self, key: Key, step_ms: int, candle: Candle, closed: bool) -> CandleUpdate | None:
        last = self.ledger.last_closed.get(key)
        if last is not None and candle.timestamp <= last:
            self.ledger.counts["duplicate_closes" if closed else "late_updates"] += 1
            return None
        if key not in self.owed:
            self.owed[key] = candle.timestamp
        if closed:
            update = self.ledger.close(key, candle)
            self.owed[key] = candle.timestamp + step_ms
            return update
        return CandleUpdate(self.exchange, key[0], key[1], candle, False)

    def fill(self, key: Key, step_ms: int, candles: list[Candle]) -> list[CandleUpdate]:
        out = self.ledger.fill(key, candles)
        last = self.ledger.last_closed.get(key)
        if last is not None:
            self.owed[key] = max(self.owed.get(key, 0), last + step_ms)
        return out

    def seed(self, key: Key, step_ms: int, newest: int) -> None:
        """The newest bar already stored (the warm-up's): it counts as closed, and the bars after
        it are owed, so a first live kline later than the next one reveals a gap to fill."""
        if newest > self.ledger.last_closed.get(key, newest - 1):
            self.ledger.last_closed[key] = newest
        self.owed[key] = max(self.owed.get(key, 0), self.ledger.last_closed[key] + step_ms)

    def skip_to(self, key: Key, ts: int) -> None:
        """Give up on bars before `ts` (a gap fill failed, or REST does not have them): a gap is
        filled once, and never blocks live closes forever."""
        self.owed[key] = max(self.owed.get(key, ts), ts)

    def forget(self, symbol: str) -> None:
        self.ledger.forget(symbol)
        for key in [k for k in self.owed if k[0] == symbol]:
            del self.owed[key]
