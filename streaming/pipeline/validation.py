"""The pipeline's boundary (pure): which closed-candle updates it accepts. A refused update is
counted per reason and never reaches the store, the indicator or the aggregator."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from streaming.candle_checks import candle_defect
from streaming.models import CandleUpdate
from streaming.timeframes import TIMEFRAME_MS


def close_rejection(u: object, symbols: Mapping[str, object] | Collection[str], timeframes: Collection[str],
                    aggregated: Collection[str]) -> str | None:
    """Why the pipeline refuses update `u`, or None to accept it. Reasons: `not_an_update`,
    `unknown_symbol`, `unknown_timeframe`, `timeframe_aggregated_here` (one source per stream:
    the pipeline builds it from 5m), `bad_candle:<defect>` (streaming.candle_checks: a candle
    that cannot exist) and `misaligned` (open time not on a bucket boundary)."""
    if not isinstance(u, CandleUpdate):
        return "not_an_update"
    if u.symbol not in symbols:
        return "unknown_symbol"
    tf = u.timeframe
    if tf not in timeframes:
        return "unknown_timeframe"
    if tf in aggregated:
        return "timeframe_aggregated_here"
    defect = candle_defect(u.candle)
    if defect is not None:
        return f"bad_candle:{defect}"
    if u.candle.timestamp % TIMEFRAME_MS[tf]:
        return "misaligned"
    return None
