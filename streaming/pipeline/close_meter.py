"""Counts of the close events an exchange's pipeline published, and how late they came. Pure.

The lag of a close is the time from its bar's end (open + timeframe) to the moment its close
event was published, on the pipeline's clock (the exchange's; the simulator's when offline).
Plain ints and floats on the hot path; the worker reads them every few seconds for the stats
snapshot and at scrape time for /metrics (streaming.worker.measure).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable

from streaming.timeframes import TIMEFRAME_MS

# upper bounds (ms) of the lag histogram's buckets; the last bucket is +Inf
LAG_BUCKETS_MS: tuple[float, ...] = (100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 3_600_000)
RECENT = 1024  # closes the percentiles are taken over


class LagHistogram:
    """Cumulative-on-read histogram of one timeframe's close lags (counts per bucket, sum)."""

    __slots__ = ("counts", "sum_ms")

    def __init__(self) -> None:
        self.counts = [0] * (len(LAG_BUCKETS_MS) + 1)
        self.sum_ms = 0.0

    def add(self, lag_ms: float) -> None:
        self.counts[bisect_left(LAG_BUCKETS_MS, lag_ms)] += 1
        self.sum_ms += lag_ms

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound ms, closes at or under it) per bucket, the last bound being inf."""
        out, total = [], 0
        for bound, n in zip((*LAG_BUCKETS_MS, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class CloseMeter:
    def __init__(self, recent: int = RECENT) -> None:
        self.closes: dict[str, int] = {}  # timeframe -> close events published
        self.lags: dict[str, LagHistogram] = {}
        self.recent: deque[float] = deque(maxlen=recent)
        self.script_calls = 0
        self.script_seconds = 0.0

    def published(self, closes: Iterable[tuple[str, int]], now_ms: int) -> None:
        """Close events just published, as (timeframe, bar open ms)."""
        counts, lags, keep = self.closes, self.lags, self.recent.append
        for tf, open_ms in closes:
            counts[tf] = counts.get(tf, 0) + 1
            late = now_ms - open_ms - TIMEFRAME_MS[tf]
            lag = float(late) if late > 0 else 0.0
            hist = lags.get(tf)
            if hist is None:
                hist = lags[tf] = LagHistogram()
            hist.add(lag)
            keep(lag)

    def script_call(self, seconds: float) -> None:
        """One call of the close script (a batch) took `seconds`."""
        self.script_calls += 1
        self.script_seconds += seconds

    def lag_percentiles(self) -> tuple[float | None, float | None]:
        """(p50, p99) of the recent lags in ms (nearest rank); (None, None) before the first close."""
        if not self.recent:
            return None, None
        ordered = sorted(self.recent)
        return _rank(ordered, 0.50), _rank(ordered, 0.99)


def _rank(ordered: list[float], q: float) -> float:
    index = math.ceil(round(q * len(ordered), 9)) - 1  # round: 0.99 * 100 is 99.00000000000001
    return ordered[max(0, min(len(ordered) - 1, index))]
