"""MACD-V stages: the StockCharts range rules of docs macd-v.md, as one pure function."""

from __future__ import annotations

import math

STAGES: tuple[str, ...] = (
    "oversold",
    "overbought",
    "rallying",
    "rebounding",
    "reversing",
    "retracing",
    "ranging",
)


def stage(macd_v: float | None, signal: float | None) -> str | None:
    """The range-rule stage of one reading, or None when the rules do not classify it.

    Rules are tried in the documented order. Cases the rules leave open, decided here:
    - MACD-V exactly -50 and below its signal: None (neither "reversing", < -50, nor
      "retracing", > -50, nor "ranging", |MACD-V| < 50: the rules as written leave it out).
    - Signal not yet available: only "oversold" (needs no signal) and "ranging" (|MACD-V| < 50)
      can be told; anything else is None.
    - MACD-V equal to its signal (histogram 0) with |MACD-V| >= 50 and not oversold: None.
    - MACD-V null (not seeded, zero volatility) or not finite: None.
    """
    if macd_v is None or not math.isfinite(macd_v):
        return None
    if macd_v < -150.0:
        return "oversold"
    if signal is not None and math.isfinite(signal):
        if macd_v > signal:
            if macd_v > 150.0:
                return "overbought"
            if macd_v > 50.0:
                return "rallying"
            return "rebounding"
        if macd_v < signal:
            if macd_v < -50.0:
                return "reversing"
            if macd_v > -50.0:
                return "retracing"
            return None
    if -50.0 < macd_v < 50.0:
        return "ranging"
    return None
