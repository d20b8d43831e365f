"""MACD-V (docs macd-v.md), incremental form (O(1) per candle). The batch form over a pandas
frame, with the same definition and numbers, is `streaming.indicators.macd_v_batch`."""

from __future__ import annotations

from streaming.indicators.macd_v_state import MacdV, MacdVValue
from streaming.indicators.stage import STAGES, stage

__all__ = ["STAGES", "MacdV", "MacdVValue", "stage"]
