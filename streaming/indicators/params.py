"""The fixed MACD-V periods (docs macd-v.md). Changing them changes every stored value."""

from __future__ import annotations

FAST = 12
SLOW = 26
SIGNAL = 9
ATR = 26
# how many recent bars the gap ratio looks at: the slow window, the one MACD-V "remembers" most
GAP_WINDOW = 26

FAST_ALPHA = 2.0 / (FAST + 1)
SLOW_ALPHA = 2.0 / (SLOW + 1)
SIGNAL_ALPHA = 2.0 / (SIGNAL + 1)

REASON_HISTORY = "insufficient history"
REASON_LOW_ACTIVITY = "low trading activity"
REASON_ZERO_VOLATILITY = "zero volatility"
