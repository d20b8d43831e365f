"""A bar while it forms: what the exchange shows at a fraction of the bucket. Pure.

The price path inside a bar runs open -> first extreme -> second extreme -> close, piecewise
linear, so the running high/low only grow and at fraction 1 the bar is exactly the final one.
"""

from __future__ import annotations

import itertools
import math

from streaming.sim.series import VOLUME_QUANTUM, Bar


def _knots(bar: Bar) -> tuple[float, float, bool]:
    # a cheap integer hash of the open time picks where the extremes happen
    x = (bar.t // 1000 * 2654435761) & 0xFFFFFFFF
    a1 = 0.15 + (x % 1000) / 1000 * 0.35
    a2 = a1 + 0.1 + ((x >> 10) % 1000) / 1000 * (0.85 - a1)
    return a1, min(a2, 0.95), bool((x >> 20) & 1)


def partial(bar: Bar, fraction: float, decimals: int) -> Bar:
    """`bar` as seen at `fraction` (0..1) of its bucket."""
    if fraction >= 1.0 or bar.trades == 0:
        return bar
    f = max(0.0, fraction)
    a1, a2, high_first = _knots(bar)
    e1, e2 = (bar.h, bar.l) if high_first else (bar.l, bar.h)
    points = ((0.0, bar.o), (a1, e1), (a2, e2), (1.0, bar.c))
    high = low = bar.o
    price = bar.o
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if f >= x1:
            high, low = max(high, y1), min(low, y1)
            continue
        price = y0 + (y1 - y0) * (f - x0) / (x1 - x0)
        break
    else:
        price = bar.c
    scale = 10.0 ** decimals
    price = max(round(price * scale), 1) / scale
    high, low = max(high, price), min(low, price)
    volume = max(math.floor(bar.v * f * VOLUME_QUANTUM), 1) / VOLUME_QUANTUM
    return Bar(bar.t, bar.o, high, low, price, min(volume, bar.v), max(1, int(bar.trades * f)))


def combine(first: Bar, more: list[Bar]) -> Bar:
    """Bars of one bigger bucket (oldest first, quiet ones already left out) as one bar."""
    high, low, volume, trades = first.h, first.l, first.v, first.trades
    for b in more:
        high, low, volume, trades = max(high, b.h), min(low, b.l), volume + b.v, trades + b.trades
    last = more[-1] if more else first
    return Bar(first.t, first.o, high, low, last.c, volume, trades)
