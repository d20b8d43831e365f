"""MACD-V (docs macd-v.md): batch (pandas) and incremental (O(1) per candle) forms, one definition."""

from __future__ import annotations

from streaming.indicators.macd_v_batch import macd_v_frame, macd_v_series
from streaming.indicators.macd_v_state import MacdV, MacdVValue
from streaming.indicators.stage import STAGES, stage

__all__ = ["STAGES", "MacdV", "MacdVValue", "macd_v_frame", "macd_v_series", "stage"]
