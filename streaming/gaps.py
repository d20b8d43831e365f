"""Filling buckets without trades with flat synthetic candles (docs macd-v.md, informative ATR)."""

from __future__ import annotations

from collections.abc import Sequence

from streaming.models import Candle
from streaming.timeframes import timeframe_ms

# A stream silent for longer than this is not "gappy", it is dead or delisted: inventing
# thousands of flat bars would only bury its real history.
DEFAULT_MAX_FILL = 10_000


class GapFillError(ValueError):
    pass


def synthetic_candle(prev: Candle, timestamp: int) -> Candle:
    """A flat bar at the previous close: O=H=L=C=prev.close, volume 0, flagged synthetic."""
    p = prev.close
    return Candle(timestamp=timestamp, open=p, high=p, low=p, close=p, volume=0.0, synthetic=True)


def synthetic_between(
    prev: Candle, next_timestamp: int, timeframe: str, max_fill: int = DEFAULT_MAX_FILL
) -> list[Candle]:
    """The synthetic bars that belong strictly between `prev` and a bar opening at `next_timestamp`.

    For the live path: before feeding a closed candle to the indicator, feed these first.
    Returns [] when the two are adjacent or `next_timestamp` is not after `prev`.
    """
    step = timeframe_ms(timeframe)
    missing = (next_timestamp - prev.timestamp) // step - 1
    if missing <= 0:
        return []
    if missing > max_fill:
        raise GapFillError(
            f"gap of {missing} {timeframe} bars after {prev.timestamp} exceeds max_fill={max_fill}; "
            "refusing to invent that many candles"
        )
    return [synthetic_candle(prev, prev.timestamp + k * step) for k in range(1, missing + 1)]


def fill_gaps(candles: Sequence[Candle], timeframe: str, max_fill: int = DEFAULT_MAX_FILL) -> list[Candle]:
    """`candles` (oldest first) with a flat synthetic candle in every missing bucket between them.

    Raises GapFillError on timestamps not aligned to `timeframe`, out of order or duplicated, and
    on a single gap longer than `max_fill` bars.
    """
    step = timeframe_ms(timeframe)
    out: list[Candle] = []
    prev: Candle | None = None
    for i, c in enumerate(candles):
        if c.timestamp % step:
            raise GapFillError(f"candle {i} opens at {c.timestamp}, not aligned to {timeframe} buckets")
        if prev is not None:
            if c.timestamp <= prev.timestamp:
                kind = "duplicated" if c.timestamp == prev.timestamp else "out of order"
                raise GapFillError(f"candle {i} at {c.timestamp} is {kind} (previous opens at {prev.timestamp})")
            out.extend(synthetic_between(prev, c.timestamp, timeframe, max_fill))
        out.append(c)
        prev = c
    return out
