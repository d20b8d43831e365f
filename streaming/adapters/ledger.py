"""Pure bookkeeping of the newest closed bar per (symbol, timeframe): at most one close per bar."""

from __future__ import annotations

from collections import Counter

from streaming.models import Candle, CandleSource, CandleUpdate

Key = tuple[str, str]  # (symbol, timeframe)


class ClosedLedger:
    def __init__(self, exchange: str) -> None:
        self.exchange = exchange
        self.last_closed: dict[Key, int] = {}
        self.counts: Counter[str] = Counter()

    def close(self, key: Key, candle: Candle, source: CandleSource = "websocket") -> CandleUpdate | None:
        """The closed update for `candle` of stream `key`, or None if that bar (or a later one)
        already closed. The ledger keeps the caller's tuple: an adapter that holds one per stream
        passes it, so no second tuple per stream is made."""
        last = self.last_closed.get(key)
        if last is not None and candle.timestamp <= last:
            self.counts["duplicate_closes" if candle.timestamp == last else "late_closes"] += 1
            return None
        self.last_closed[key] = candle.timestamp
        self.counts["closed"] += 1
        if source == "rest":
            self.counts["gap_filled"] += 1
        return CandleUpdate(self.exchange, key[0], key[1], candle, True, source)

    def fill(self, key: Key, candles: list[Candle]) -> list[CandleUpdate]:
        """Closed REST candles (oldest first) newer than the last close, as source="rest"."""
        out = []
        for c in sorted(candles, key=lambda c: c.timestamp):
            u = self.close(key, c, "rest")
            if u is not None:
                out.append(u)
        return out

    def reopen(self, symbol: str, timeframe: str, ts: int, step_ms: int) -> None:
        """Let the bar at `ts`, the last closed, close again (from REST): it was closed on a guess."""
        key = (symbol, timeframe)
        if self.last_closed.get(key) == ts:
            self.last_closed[key] = ts - step_ms
            self.counts["reopened"] += 1

    def gap_start(self, symbol: str, timeframe: str, ts: int, step_ms: int) -> int | None:
        """Open time of the first bar missing before `ts`, or None if nothing is missing/known."""
        last = self.last_closed.get((symbol, timeframe))
        if last is None or ts <= last + step_ms:
            return None
        return last + step_ms

    def forget(self, symbol: str) -> None:
        for key in [k for k in self.last_closed if k[0] == symbol]:
            del self.last_closed[key]
