"""Lenient number reading for REST statistics, where a blank or junk field means "unknown"."""

from __future__ import annotations

import math


def num_or_zero(value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return x if math.isfinite(x) and x >= 0 else 0.0
