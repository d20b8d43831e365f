"""Memory per stream of the peers' way of keeping one live stream's MACD-V inputs, as RSS growth
per instance (the same measure as the worker's RSS per live stream):

- talipp: MACD(12, 26, 9) on closes plus ATR(26) on OHLCV, fed the stream's 300 candles
  (talipp keeps every input and output value);
- numpy window: the last 300 candles as a float64 array (open, high, low, close, volume),
  recomputed on each close.

Run with the peers' virtualenv (talipp is not a Livermore dependency):

    python bench/peer_memory.py talipp|numpy N
Prints the bytes per stream.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

WINDOW = 300


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def candles(i: int) -> list[tuple[float, float, float, float, float]]:
    base = 10.0 + i % 97
    out = []
    for b in range(WINDOW):
        o = base * (1 + ((b * 31 + i) % 13 - 6) / 1000)
        c = base * (1 + ((b * 37 + i) % 13 - 6) / 1000)
        out.append((o, max(o, c) * 1.002, min(o, c) * 0.998, c, 100.0 + b))
    return out


def talipp_stream(rows: list[tuple[float, float, float, float, float]]) -> object:
    from talipp.indicators import ATR, MACD
    from talipp.ohlcv import OHLCV

    macd, atr = MACD(12, 26, 9), ATR(26)
    for o, h, lo, c, v in rows:
        macd.add(c)
        atr.add(OHLCV(o, h, lo, c, v))
    return macd, atr


def numpy_stream(rows: list[tuple[float, float, float, float, float]]) -> object:
    import numpy as np

    return np.array(rows, dtype=np.float64)


def main(kind: str, n: int) -> None:
    build = {"talipp": talipp_stream, "numpy": numpy_stream}[kind]
    build(candles(0))  # imports and first-use allocations before the baseline
    inputs = [candles(i) for i in range(n)]
    gc.collect()
    before = rss_bytes()
    kept = [build(rows) for rows in inputs]
    gc.collect()
    print((rss_bytes() - before) / len(kept))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
