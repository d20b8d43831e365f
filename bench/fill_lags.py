"""What the gap-fill bench (bench/bench_gapfill.py) computes from the close events it collected:
the simulated clock in monotonic time, the bars a window owes, the live closes' lags, and whether
every filled bar got exactly one close event. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import orjson

STEP_MS = {"5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}

Event = tuple[int, bytes, bytes]  # (arrival monotonic ns, channel, payload), as Subscriber.take() gives


@dataclass(frozen=True)
class Clock:
    """The simulated clock in CLOCK_MONOTONIC: one reading of both, and the speed."""
    sim_ms: int
    mono_ns: int
    speed: float

    def mono(self, sim_ms: int) -> int:
        return self.mono_ns + int((sim_ms - self.sim_ms) / self.speed * 1e6)

    def sim(self, mono_ns: int) -> int:
        return self.sim_ms + int((mono_ns - self.mono_ns) * self.speed / 1e6)


@dataclass(frozen=True)
class Close:
    arrived_ns: int
    symbol: str
    timeframe: str
    open_ms: int
    source: str

    @property
    def end_ms(self) -> int:
        return self.open_ms + STEP_MS[self.timeframe]


def closes(events: Iterable[Event]) -> list[Close]:
    """The close events among the subscriber's messages (anything unreadable is left out)."""
    out = []
    for arrived, _channel, data in events:
        try:
            e = orjson.loads(data)
            out.append(Close(arrived, e["symbol"], e["timeframe"], int(e["timestamp"]), e.get("source", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    return out


def bar_ends(timeframes: Iterable[str], after_ms: int, until_ms: int) -> list[tuple[str, int]]:
    """(timeframe, end) of every bar ending in (after_ms, until_ms]; bars are epoch-aligned."""
    out = []
    for tf in timeframes:
        step = STEP_MS[tf]
        end = (after_ms // step + 1) * step
        while end <= until_ms:
            out.append((tf, end))
            end += step
    return out


@dataclass
class Window:
    """The live symbols' closes of the bars that ended in one window: lag from the bar's end to the
    close event, and to the closing frame's arrival at a plain client (the simulator's delivery)."""
    lags_ms: np.ndarray
    delivery_ms: np.ndarray
    expected: int
    lost: int

    @staticmethod
    def pct(xs: np.ndarray, q: float) -> float:
        return float(np.percentile(xs, q)) if len(xs) else float("nan")


def window(cs: list[Close], clock: Clock, frames: dict[tuple[str, str, int], int], symbols: Iterable[str],
           after_ms: int, until_ms: int) -> Window:
    """`frames`: (symbol, timeframe, open) -> arrival ns of its closing frame at the plain client."""
    syms = set(symbols)
    first: dict[tuple[str, str, int], int] = {}
    for c in cs:
        if c.symbol in syms and after_ms < c.end_ms <= until_ms:
            key = (c.symbol, c.timeframe, c.open_ms)
            first[key] = min(first.get(key, c.arrived_ns), c.arrived_ns)
    lags = [(t - clock.mono(o + STEP_MS[tf])) / 1e6 for (_, tf, o), t in first.items()]
    delivery = [(frames[k] - clock.mono(k[2] + STEP_MS[k[1]])) / 1e6 for k in first if k in frames]
    expected = len(syms) * len(bar_ends(STEP_MS, after_ms, until_ms))
    return Window(np.array(lags), np.array(delivery), expected, expected - len(first))


def by_bar_end(cs: list[Close], clock: Clock, frames: dict[tuple[str, str, int], int], symbols: Iterable[str],
               after_ms: int, until_ms: int) -> list[tuple[int, int, float, float]]:
    """(bar end, closes, max bar end->event ms, max bar end->frame ms) per bar end in the window."""
    out = []
    for end in sorted({c.end_ms for c in cs if after_ms < c.end_ms <= until_ms}):
        w = window([c for c in cs if c.end_ms == end], clock, frames, symbols, end - 1, end)
        if len(w.lags_ms):
            out.append((end, len(w.lags_ms), Window.pct(w.lags_ms, 100), Window.pct(w.delivery_ms, 100)))
    return out


@dataclass
class Fill:
    """The bars withheld at `end_ms` (one per stream of the fill symbols) and their close events."""
    streams: int
    once: int           # streams whose filled bar got exactly one close event
    missing: int        # ... none
    repeated: int       # ... more than one
    from_rest: int      # close events of filled bars whose source is "rest"
    done_ns: int | None  # arrival of the last filled bar's event


def fill(cs: list[Close], symbols: Iterable[str], end_ms: int) -> Fill:
    syms = set(symbols)
    keys = {(s, tf, end_ms - step) for s in syms for tf, step in STEP_MS.items()}
    got = [c for c in cs if (c.symbol, c.timeframe, c.open_ms) in keys]
    n = Counter((c.symbol, c.timeframe, c.open_ms) for c in got)
    return Fill(len(keys), sum(1 for k in keys if n[k] == 1), sum(1 for k in keys if n[k] == 0),
                sum(1 for k in keys if n[k] > 1), sum(1 for c in got if c.source == "rest"),
                max((c.arrived_ns for c in got), default=None))


def repeated_events(cs: list[Close]) -> int:
    """Close events beyond the first for any (symbol, timeframe, open time)."""
    n = Counter((c.symbol, c.timeframe, c.open_ms) for c in cs)
    return sum(v - 1 for v in n.values() if v > 1)
