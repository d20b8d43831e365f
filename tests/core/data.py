"""Loading the recorded OHLCV fixtures as DataFrames and Candles, and synthetic series."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from streaming.models import Candle


def load_frame(fixtures_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(fixtures_dir / "ohlcv" / name)


def frame_candles(df: pd.DataFrame) -> list[Candle]:
    syn = df["synthetic"] if "synthetic" in df.columns else [False] * len(df)
    return [
        Candle(int(t), float(o), float(h), float(lo), float(c), float(v), bool(s))
        for t, o, h, lo, c, v, s in zip(
            df["timestamp_ms"], df["open"], df["high"], df["low"], df["close"], df["volume"], syn, strict=True
        )
    ]


def candles_frame(candles: list[Candle]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp_ms": [c.timestamp for c in candles],
            "open": [c.open for c in candles],
            "high": [c.high for c in candles],
            "low": [c.low for c in candles],
            "close": [c.close for c in candles],
            "volume": [c.volume for c in candles],
            "synthetic": [c.synthetic for c in candles],
        }
    )


def trend(factor: float, bars: int = 60, start: float = 100.0) -> pd.DataFrame:
    """The synthetic trend of docs macd-v.md: price x factor each bar, high/low +-1%."""
    prices = [start]
    for _ in range(bars - 1):
        prices.append(prices[-1] * factor)
    return pd.DataFrame(
        {
            "timestamp_ms": [1_700_000_100_000 + i * 300_000 for i in range(bars)],
            "open": prices,
            "high": [p * 1.01 for p in prices],
            "low": [p * 0.99 for p in prices],
            "close": prices,
            "volume": [1.0] * bars,
        }
    )
