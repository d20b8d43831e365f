"""The 5m streams and bars the staging benches stage (bench_staging.py, bench_close_script.py):
the same seeded streams and price series for both.

Imports no `streaming` at module level: bench_staging's child puts another source tree first on
sys.path before it calls these, and must stage with that tree's code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streaming.models import Candle
    from streaming.pipeline.staging import StreamHead

T0 = 1_700_000_100_000 - 1_700_000_100_000 % 300_000  # a 5m boundary
STEP_MS = 300_000


def stream_heads(n: int) -> list[StreamHead]:
    """n Binance 5m streams, S00000USDT, S00001USDT, ..., without user keys."""
    from streaming.pipeline.staging import stream_head

    return [stream_head(2, "binance", f"S{i:05d}USDT", "5m", (), 0) for i in range(n)]


def bar(i: int, b: int) -> Candle:
    """Bar `b` of stream `i`: prices that differ by stream and wander over a 7-bar cycle."""
    from streaming.models import Candle

    p = 100 + (i % 50) + (b % 7) * 0.3
    return Candle(T0 + b * STEP_MS, p, p * 1.01, p * 0.99, p * 1.001, 12.5)
