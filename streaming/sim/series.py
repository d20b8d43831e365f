"""Deterministic synthetic 5-minute bars: a log random walk per (exchange, symbol), made lazily.

Bars are indexed from a day-aligned anchor, generated in day-sized chunks whose random state
depends only on (seed, exchange, symbol, chunk), so the same seed and start give the same bars
whatever order they are asked for in. Prices are whole ticks (k / 10**decimals, the float that
the decimal string parses to) and volumes whole multiples of 1/256, so sums and extremes over
any bucket are exact: a client aggregating 5m bars gets bit-for-bit the simulator's 1h bars.
"""

from __future__ import annotations

import math
import threading
import zlib
from typing import NamedTuple

import numpy as np

FIVE_MIN_MS = 300_000
DAY_MS = 86_400_000
BARS_PER_DAY = DAY_MS // FIVE_MIN_MS
VOLUME_QUANTUM = 256.0  # volumes are k / 256: exact in binary floating point
SIGMA = 0.0025  # per-5m-bar log-return standard deviation


class Bar(NamedTuple):
    """One bucket as the simulator knows it. `trades == 0` means nobody traded in it."""

    t: int  # open time, epoch ms
    o: float
    h: float
    l: float  # noqa: E741  (the exchange's own letter)
    c: float
    v: float
    trades: int


def price_decimals(price: float) -> int:
    """Ticks of about 1e-4 of the price: realistic increments, never a zero price."""
    if price <= 0 or not math.isfinite(price):
        return 2
    return max(2, min(8, math.ceil(4 - math.log10(price))))


def symbol_key(exchange: str, symbol: str) -> int:
    return zlib.crc32(f"{exchange}:{symbol}".encode())


def _round(x: np.ndarray, scale: float) -> np.ndarray:
    # integer / 10**d is the correctly rounded double of the decimal k/10**d
    return np.maximum(np.round(x * scale), 1.0) / scale


def generate_chunk(rng: np.random.Generator, log_price: float, n: int, decimals: int,
                   gap_probability: float, volume_scale: float) -> tuple[dict[str, np.ndarray], float]:
    """`n` consecutive bars starting at `log_price`; returns the arrays and the last log price."""
    scale = 10.0 ** decimals
    r = rng.normal(0.0, SIGMA, n)
    gap = rng.random(n) < gap_probability if gap_probability > 0 else np.zeros(n, dtype=bool)
    r[gap] = 0.0
    lp = log_price + np.cumsum(r)
    close = _round(np.exp(lp), scale)
    open_ = np.empty(n)
    open_[0] = _round(np.array([math.exp(log_price)]), scale)[0]
    open_[1:] = close[:-1]
    # a gap keeps the price where it was: no trade moved it
    close[gap] = open_[gap]  # already equal (r = 0); stated so rounding can never split them
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = np.maximum(_round(top * np.exp(np.abs(rng.normal(0.0, SIGMA * 0.6, n))), scale), top)
    low = np.minimum(_round(bottom * np.exp(-np.abs(rng.normal(0.0, SIGMA * 0.6, n))), scale), bottom)
    volume = (np.floor(rng.lognormal(0.0, 0.6, n) * volume_scale * VOLUME_QUANTUM) + 1.0) / VOLUME_QUANTUM
    trades = (np.floor(volume * VOLUME_QUANTUM) % 57 + 1).astype(np.int64)
    high[gap] = open_[gap]
    low[gap] = open_[gap]
    volume[gap] = 0.0
    trades[gap] = 0
    return {"o": open_, "h": high, "l": low, "c": close, "v": volume, "n": trades}, float(lp[-1])


class Series:
    """All 5m bars of one symbol from `anchor_ms`, grown a day at a time on demand. Thread-safe."""

    def __init__(self, *, seed: int, exchange: str, symbol: str, base_price: float, anchor_ms: int,
                 history_days: int, gap_probability: float) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.anchor_ms = anchor_ms
        self.decimals = price_decimals(base_price)
        self._seed = (int(seed) & 0xFFFFFFFF, symbol_key(exchange, symbol))
        self._gap_p = gap_probability
        self._volume_scale = max(1.0 / VOLUME_QUANTUM, 2_000_000.0 / base_price)
        self._first_chunk_bars = (history_days + 1) * BARS_PER_DAY
        self._log_price = math.log(base_price)
        self._chunks = 0
        self._lock = threading.RLock()
        self.o = self.h = self.l = self.c = self.v = np.empty(0)
        self.n = np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.o)

    def _grow(self) -> None:
        size = self._first_chunk_bars if self._chunks == 0 else BARS_PER_DAY
        rng = np.random.default_rng([*self._seed, self._chunks])
        arrays, self._log_price = generate_chunk(rng, self._log_price, size, self.decimals, self._gap_p,
                                                 self._volume_scale)
        if self._chunks > 0:
            # a chunk opens at the previous close, exactly
            arrays["o"][0] = self.c[-1]
            arrays["h"][0] = max(arrays["h"][0], arrays["o"][0])
            arrays["l"][0] = min(arrays["l"][0], arrays["o"][0])
            if arrays["n"][0] == 0:
                arrays["c"][0] = arrays["h"][0] = arrays["l"][0] = arrays["o"][0]
        for name in ("o", "h", "l", "c", "v", "n"):
            setattr(self, name, np.concatenate([getattr(self, name), arrays[name]]))
        self._chunks += 1

    def ensure(self, index: int) -> None:
        """Make sure bar `index` exists."""
        if index < len(self.o):
            return
        with self._lock:
            while index >= len(self.o):
                self._grow()

    def index_of(self, ts_ms: int) -> int:
        return (ts_ms - self.anchor_ms) // FIVE_MIN_MS

    def bar(self, index: int) -> Bar:
        self.ensure(index)
        return Bar(self.anchor_ms + index * FIVE_MIN_MS, float(self.o[index]), float(self.h[index]),
                   float(self.l[index]), float(self.c[index]), float(self.v[index]), int(self.n[index]))

    def aggregate(self, first: int, last: int, *, skip_quiet: bool) -> Bar | None:
        """The bar made of 5m bars [first, last); None when `skip_quiet` and nobody traded."""
        self.ensure(last - 1)
        n = self.n[first:last]
        if skip_quiet:
            idx = np.flatnonzero(n)
            if len(idx) == 0:
                return None
            lo, hi = first + int(idx[0]), first + int(idx[-1]) + 1
            mask = n > 0
            high = float(self.h[first:last][mask].max())
            low = float(self.l[first:last][mask].min())
        else:
            lo, hi = first, last
            high = float(self.h[first:last].max())
            low = float(self.l[first:last].min())
        return Bar(self.anchor_ms + first * FIVE_MIN_MS, float(self.o[lo]), high, low, float(self.c[hi - 1]),
                   float(self.v[first:last].sum()), int(n.sum()))

    def bars(self, step_ms: int, start_ms: int, end_ms: int, *, skip_quiet: bool) -> list[Bar]:
        """Bars of `step_ms` (a multiple of 5m) with open time in [start_ms, end_ms), all complete."""
        k = step_ms // FIVE_MIN_MS
        first = max(0, -(-(start_ms - self.anchor_ms) // step_ms))
        stop = (end_ms - self.anchor_ms + step_ms - 1) // step_ms
        if stop <= first:
            return []
        self.ensure(stop * k - 1)
        if k == 1:
            sl = slice(first, stop)
            t = self.anchor_ms + np.arange(first, stop, dtype=np.int64) * FIVE_MIN_MS
            rows = zip(t.tolist(), self.o[sl].tolist(), self.h[sl].tolist(), self.l[sl].tolist(),
                       self.c[sl].tolist(), self.v[sl].tolist(), self.n[sl].tolist(), strict=True)
            return [Bar(*row) for row in rows if not skip_quiet or row[6] > 0]
        out = []
        for j in range(first, stop):
            bar = self.aggregate(j * k, (j + 1) * k, skip_quiet=skip_quiet)
            if bar is not None:
                out.append(bar)
        return out
