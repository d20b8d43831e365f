"""Indicators computed on closed candles. Pure: no I/O.

Only the incremental MACD-V is exported here, so the streaming worker never loads pandas; the
batch (pandas) reference lives in `streaming.indicators.macd_v_batch` for tests, benchmarks and
batch jobs.
"""

from streaming.indicators.macd_v import STAGES, MacdV, MacdVValue, stage

__all__ = ["STAGES", "MacdV", "MacdVValue", "stage"]
