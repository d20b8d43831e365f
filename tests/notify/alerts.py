"""Alerts for the delivery tests, and publishing them the way the worker's close script does."""

from __future__ import annotations

from streaming import keys
from streaming.notify.events import AlertEvent, encode_alert


def make_alert(i: int, symbol: str = "BTC-USD", exchange_id: int = 1, timeframe: str = "1h",
               label: str = "level_-200", level: float | None = -200, t0: int = 1_786_309_200_000) -> AlertEvent:
    ts = t0 + i * 3_600_000
    kind = "level" if label.startswith("level_") else "reversal"
    return AlertEvent(f"{exchange_id}:{symbol}:{timeframe}:{ts}:{label}", exchange_id,
                      {1: "coinbase", 2: "binance", 3: "binance_us"}[exchange_id], symbol, timeframe, kind, label,
                      level, -212.5 - i % 7, -190.25, -22.25, 61_234.5 + i, ts, "2026-08-09T21:05:48+00:00")


def publish(redis_client, alerts: list[AlertEvent]) -> list[str]:
    """XADD to stream:alerts exactly as the worker's close script does."""
    pipe = redis_client.pipeline(transaction=False)
    for a in alerts:
        pipe.xadd(keys.ALERTS_STREAM, {"json": encode_alert(a)}, maxlen=100_000, approximate=True)
    return pipe.execute()
