"""What a candle that can exist looks like. Pure: used at the pipeline's boundary, by the store
before a write and (the magnitude bound) by aggregation, so a bar no exchange could have sent
never reaches Redis, the indicator or a sum.

`candle_defect` names the first defect found, as a short reason that callers count and log:
- `not_a_candle`, `bad_timestamp`: wrong type, or an open time that is not non-negative epoch ms;
- `non_finite`: NaN or infinity in a price or the volume;
- `out_of_range`: a price <= 0 or above MAX_VALUE, a volume < 0 or above MAX_VALUE;
- `inconsistent`: low > high, or open or close outside [low, high].
"""

from __future__ import annotations

import math

from streaming.models import Candle

# No traded price or volume comes near this; far below float overflow, so sums of any number of
# bars a bucket can hold stay finite.
MAX_VALUE = 1e15

DEFECTS: tuple[str, ...] = ("not_a_candle", "bad_timestamp", "non_finite", "out_of_range", "inconsistent")

_isfinite = math.isfinite


def candle_defect(c: object) -> str | None:
    """The first defect of `c` (see the module docstring), or None for a candle that can exist."""
    if not isinstance(c, Candle):
        return "not_a_candle"
    ts = c.timestamp
    o, h, lo, cl, v = c.open, c.high, c.low, c.close, c.volume
    try:
        # every close passes here: one chained test for a sound bar (False for NaN and for an
        # infinity), the named checks only to name what is wrong
        if type(ts) is int and ts >= 0 and 0.0 < lo <= o <= h <= MAX_VALUE and lo <= cl <= h and 0.0 <= v <= MAX_VALUE:
            return None
    except Exception:  # e.g. a Decimal NaN or an array compared: named_defect names it
        pass
    return named_defect(c)


def named_defect(c: Candle) -> str | None:
    """The module docstring's rules checked one by one, in its order: what `candle_defect` asks
    after its single test for a sound bar fails."""
    ts = c.timestamp
    o, h, lo, cl, v = c.open, c.high, c.low, c.close, c.volume
    if isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
        return "bad_timestamp"
    try:
        if not (_isfinite(o) and _isfinite(h) and _isfinite(lo) and _isfinite(cl) and _isfinite(v)):
            return "non_finite"
    except TypeError:
        return "non_finite"
    if lo > h:
        return "inconsistent"
    if not (lo > 0.0 and h <= MAX_VALUE and 0.0 <= v <= MAX_VALUE):
        return "out_of_range"
    if not (lo <= o <= h and lo <= cl <= h):
        return "inconsistent"
    return None

