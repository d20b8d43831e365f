"""A made-up alert and the candles of its chart, for `livermore notify test` (deterministic)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from streaming.models import Candle
from streaming.notify.events import AlertEvent

SAMPLE_START_MS = 1_786_300_000_000
STEP_MS = 3_600_000  # 1h bars


def sample_candles(n: int = 300) -> list[Candle]:
    """A slow wave with a sell-off at the end: MACD-V dives below -150 on the last bars."""
    out = []
    price = 100.0
    for i in range(n):
        drift = -0.012 if i > n - 15 else 0.004 * math.sin(i / 9)
        o, c = price, price * (1 + drift)
        out.append(Candle(SAMPLE_START_MS + i * STEP_MS, o, max(o, c) * 1.002, min(o, c) * 0.998, c, 1000.0))
        price = c
    return out


def sample_alert() -> AlertEvent:
    last = sample_candles()[-1]
    # a valid alert by the contract (consumers decode it like any other); the `test:` id prefix and the
    # TEST-USD symbol say it is a sample
    return AlertEvent(f"test:TEST-USD:1h:{last.timestamp}:level_-200", 1, "coinbase", "TEST-USD", "1h",
                      "level", "level_-200", -200, -212.5, -180.3, -32.2, last.close, last.timestamp,
                      datetime.now(UTC).isoformat())
