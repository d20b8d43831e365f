"""Indicators computed on closed candles. Pure: no I/O."""

from streaming.indicators.macd_v import STAGES, MacdV, MacdVValue, macd_v_frame, macd_v_series, stage

__all__ = ["STAGES", "MacdV", "MacdVValue", "macd_v_frame", "macd_v_series", "stage"]
