"""A recording StreamListener and helpers to run a live stream against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

from streaming.adapters.base import ConnectionState, LiveStream
from streaming.models import Candle, CandleUpdate


class Recorder:
    """Keeps every update; closes are COUNTED per (symbol, timeframe, open time), never deduped."""

    def __init__(self) -> None:
        self.updates: list[CandleUpdate] = []
        self.closes: list[CandleUpdate] = []
        self.close_counts: Counter[tuple[str, str, int]] = Counter()
        self.states: list[tuple[ConnectionState, str | None]] = []
        self.rejected: list[tuple[list[str], str]] = []

    def on_candle(self, update: CandleUpdate) -> None:
        self.updates.append(update)
        if update.closed:
            self.closes.append(update)
            self.close_counts[(update.symbol, update.timeframe, update.candle.timestamp)] += 1

    def on_state(self, state: ConnectionState, detail: str | None = None) -> None:
        self.states.append((state, detail))

    def on_rejected(self, symbols: list[str], reason: str) -> None:
        self.rejected.append((list(symbols), reason))

    def closed(self, symbol: str, timeframe: str) -> list[Candle]:
        return [u.candle for u in self.closes if u.symbol == symbol and u.timeframe == timeframe]

    def double_closes(self) -> list[tuple[str, str, int]]:
        return [k for k, n in self.close_counts.items() if n > 1]

    def count(self, state: ConnectionState) -> int:
        return sum(1 for s, _ in self.states if s == state)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(stream: LiveStream):
    task = asyncio.create_task(stream.run())
    try:
        yield task
    finally:
        await stream.close()
        await asyncio.wait_for(task, 10)


def assert_matches_truth(rec: Recorder, truth: Callable[[str, str], list[Candle]], symbol: str, timeframe: str,
                         since: int | None = None) -> int:
    """Closed candles received == the simulator's closed bars over the same window; no double close."""
    got = [c for c in rec.closed(symbol, timeframe) if since is None or c.timestamp >= since]
    assert got, f"no closed candles for {symbol} {timeframe}"
    assert [c.timestamp for c in got] == sorted({c.timestamp for c in got}), "closes out of order or doubled"
    lo, hi = got[0].timestamp, got[-1].timestamp
    want = [c for c in truth(symbol, timeframe) if lo <= c.timestamp <= hi]
    assert [c.timestamp for c in got] == [c.timestamp for c in want], (
        f"{symbol} {timeframe}: missing {sorted({c.timestamp for c in want} - {c.timestamp for c in got})} "
        f"extra {sorted({c.timestamp for c in got} - {c.timestamp for c in want})}")
    for g, w in zip(got, want, strict=True):
        assert (g.open, g.high, g.low, g.close, g.volume) == (w.open, w.high, w.low, w.close, w.volume), (g, w)
    return len(got)
