"""Pure candle closing for Coinbase, whose candles channel never says "closed".

Rules (docs/adapters.md, "Closing rules"):
- an update for a start already seen replaces that candle;
- a candle with a later start closes the previous one, with its last values;
- a bucket with no later candle is closed by the clock `grace_ms` after its end (quiet market);
- a late update for an already closed bucket is a correction: counted, never a second close;
- a snapshot's candles before the last are closed history (they have gaps: none invented).
"""

from __future__ import annotations

from collections import Counter

from streaming.adapters.ledger import ClosedLedger
from streaming.models import Candle, CandleUpdate

FIVE_MINUTES_MS = 300_000


class CandleBook:
    def __init__(self, exchange: str = "coinbase", timeframe: str = "5m",
                 step_ms: int = FIVE_MINUTES_MS, grace_ms: int = 5_000) -> None:
        self.exchange = exchange
        self.timeframe = timeframe
        self.step_ms = step_ms
        self.grace_ms = grace_ms
        self.forming: dict[str, Candle] = {}
        self.ledger = ClosedLedger(exchange)

    @property
    def counts(self) -> Counter[str]:
        return self.ledger.counts

    def last_closed(self, symbol: str) -> int | None:
        return self.ledger.last_closed.get((symbol, self.timeframe))

    def _forming(self, symbol: str, candle: Candle) -> CandleUpdate:
        return CandleUpdate(self.exchange, symbol, self.timeframe, candle, False)

    def _close(self, symbol: str, candle: Candle) -> CandleUpdate | None:
        return self.ledger.close((symbol, self.timeframe), candle)

    def update(self, symbol: str, candle: Candle) -> list[CandleUpdate]:
        last = self.last_closed(symbol)
        if last is not None and candle.timestamp <= last:
            self.ledger.counts["corrections"] += 1
            return []
        current = self.forming.get(symbol)
        out: list[CandleUpdate] = []
        if current is not None:
            if candle.timestamp < current.timestamp:
                # an older bucket after a newer one: the newer start already closed it
                self.ledger.counts["corrections"] += 1
                return []
            if candle.timestamp > current.timestamp:
                closed = self._close(symbol, current)
                if closed is not None:
                    out.append(closed)
        self.forming[symbol] = candle
        out.append(self._forming(symbol, candle))
        return out

    def snapshot(self, symbol: str, candles: list[Candle]) -> list[CandleUpdate]:
        if not candles:
            return []
        ordered = sorted(candles, key=lambda c: c.timestamp)
        out: list[CandleUpdate] = []
        for candle in ordered[:-1]:
            current = self.forming.get(symbol)
            if current is not None and current.timestamp <= candle.timestamp:
                del self.forming[symbol]
                if current.timestamp < candle.timestamp:
                    closed = self._close(symbol, current)
                    if closed is not None:
                        out.append(closed)
            closed = self._close(symbol, candle)
            if closed is not None:
                out.append(closed)
        out.extend(self.update(symbol, ordered[-1]))
        return out

    def close_forming(self, symbol: str) -> list[CandleUpdate]:
        """Close the forming candle of `symbol` now (a later bucket has begun)."""
        current = self.forming.pop(symbol, None)
        closed = self._close(symbol, current) if current is not None else None
        return [closed] if closed is not None else []

    def on_clock(self, now_ms: int, symbols: frozenset[str] | set[str] | None = None,
                 grace_ms: int | None = None) -> list[CandleUpdate]:
        """Close forming candles whose bucket ended more than grace_ms (default: the book's) before `now_ms`."""
        out: list[CandleUpdate] = []
        limit = now_ms - self.step_ms - (self.grace_ms if grace_ms is None else grace_ms)
        for symbol, candle in list(self.forming.items()):
            if candle.timestamp <= limit and (symbols is None or symbol in symbols):
                del self.forming[symbol]
                closed = self._close(symbol, candle)
                if closed is not None:
                    self.ledger.counts["clock_closes"] += 1
                    out.append(closed)
        return out

    def fill(self, symbol: str, candles: list[Candle]) -> list[CandleUpdate]:
        """REST history: closes what is newer than the last close; a stale forming bar is dropped."""
        out = self.ledger.fill((symbol, self.timeframe), candles)
        last = self.last_closed(symbol)
        current = self.forming.get(symbol)
        if current is not None and last is not None and current.timestamp <= last:
            del self.forming[symbol]
        return out

    def reopen(self, symbol: str, ts: int) -> None:
        """The clock closed the bar at `ts` as a quiet bucket, but the stream had stalled: a gap
        fill closes it again with the exchange's values (the store takes them as a correction)."""
        self.ledger.reopen(symbol, self.timeframe, ts, self.step_ms)

    def gap_start(self, symbol: str, ts: int) -> int | None:
        return self.ledger.gap_start(symbol, self.timeframe, ts, self.step_ms)

    def forget(self, symbol: str) -> None:
        self.forming.pop(symbol, None)
        self.ledger.forget(symbol)
