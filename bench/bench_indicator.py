"""MACD-V hot path: incremental update vs recomputing with pandas, and memory per live stream.

    .venv/bin/python bench/bench_indicator.py [--updates N] [--recomputes N]

Prints figures measured in this run only; the ratio is what matters (target >= 100x).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from pathlib import Path

import pandas as pd

from streaming.aggregation import TimeframeAggregator
from streaming.alerts.rules import AlertState, evaluate
from streaming.indicators import MacdV
from streaming.indicators.macd_v_batch import macd_v_series
from streaming.models import Candle

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ohlcv" / "ETH_BTC-5m.csv"
WINDOW = 300


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--updates", type=int, default=5760 * 10)
    ap.add_argument("--recomputes", type=int, default=200)
    args = ap.parse_args()

    df = pd.read_csv(FIXTURE)
    rows = list(zip(df["high"].tolist(), df["low"].tolist(), df["close"].tolist(), strict=True))
    n = args.updates

    def incremental() -> None:
        state = MacdV()
        upd = state.update
        for i in range(n):
            h, lo, c = rows[i % len(rows)]
            upd(h, lo, c)

    inc_us = _best_of(incremental) / n * 1e6

    frames = [df.iloc[i - WINDOW : i] for i in range(WINDOW, WINDOW + args.recomputes)]

    def recompute() -> None:
        for f in frames:
            macd_v_series(f)

    batch_us = _best_of(recompute) / len(frames) * 1e6

    state = MacdV()
    alert = AlertState()
    values = [state.update(h, lo, c) for h, lo, c in rows]

    def alerts() -> None:
        st = alert
        for i, v in enumerate(values):
            st, _ = evaluate(st, v, i * 300_000)

    alert_us = _best_of(alerts) / len(values) * 1e6

    candles = [
        Candle(int(t), o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(
            df["timestamp_ms"], df["open"], df["high"], df["low"], df["close"], df["volume"], strict=True
        )
    ]

    def aggregation() -> None:
        agg = TimeframeAggregator()
        for c in candles:
            agg.add(c)

    agg_us = _best_of(aggregation) / len(candles) * 1e6

    print(f"incremental MacdV.update      : {inc_us:8.2f} us/candle ({n} updates)")
    print(f"pandas macd_v_series({WINDOW})    : {batch_us:8.1f} us/candle ({len(frames)} recomputes)")
    print(f"ratio recompute / incremental : {batch_us / inc_us:8.0f} x (target >= 100 x)")
    print(f"alert rules evaluate          : {alert_us:8.2f} us/candle")
    print(f"5m -> 15m/1h/4h/1d aggregation: {agg_us:8.2f} us/5m candle")

    # memory of one live stream's pure state, warmed up so every field holds a real value
    gc.collect()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    m = MacdV.from_candles(candles[:500])
    a = AlertState()
    for i, v in enumerate(values[:500]):
        a, _ = evaluate(a, v, i * 300_000)
    a, _ = evaluate(AlertState(-140.0), values[600], 0)  # with one cooldown entry
    agg = TimeframeAggregator.rebuild(candles[:500])
    snap1 = tracemalloc.take_snapshot()
    total = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    tracemalloc.stop()
    sizes = []
    keep = []
    for obj in (m, a, agg):
        data = obj.to_dict()
        tracemalloc.start()
        s0 = tracemalloc.take_snapshot()
        keep.append(type(obj).from_dict(data))  # what one restored state keeps alive
        s1 = tracemalloc.take_snapshot()
        tracemalloc.stop()
        sizes.append(sum(d.size_diff for d in s1.compare_to(s0, "filename")))
    print(f"memory MacdV state            : {sizes[0]:8d} B")
    print(f"memory AlertState             : {sizes[1]:8d} B")
    print(f"memory TimeframeAggregator    : {sizes[2]:8d} B (4 targets, per symbol)")
    print(f"memory all three, warmed      : {total:8d} B per stream (budget 10240 B)")


if __name__ == "__main__":
    main()
