"""Batch MACD-V over a whole OHLC frame with pandas: the reference the incremental state matches."""

from __future__ import annotations

import numpy as np
import pandas as pd

from streaming.indicators.params import (
    ATR,
    FAST,
    FAST_ALPHA,
    GAP_WINDOW,
    SIGNAL,
    SIGNAL_ALPHA,
    SLOW,
    SLOW_ALPHA,
)
from streaming.indicators.stage import stage

REQUIRED_COLUMNS = ("high", "low", "close")


def _seeded_ema(x: pd.Series, n: int, alpha: float) -> pd.Series:
    """EMA seeded with the SMA of the first n observed values; NaN inputs are missing and the
    EMA carries over them (that is how the ATR and the signal skip synthetic/null bars)."""
    observed = x.dropna()
    if len(observed) < n:
        return pd.Series(np.nan, index=x.index, dtype=float)
    seeded = observed.copy()
    seeded.iloc[: n - 1] = np.nan
    seeded.iloc[n - 1] = observed.iloc[:n].mean()
    ema = seeded.ewm(alpha=alpha, adjust=False).mean()
    return ema.reindex(x.index).ffill()


def _validated(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"MACD-V needs a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"MACD-V needs columns high, low, close; missing: {', '.join(missing)}")
    arrays = []
    for col in REQUIRED_COLUMNS:
        try:
            a = df[col].to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"MACD-V column {col!r} is not numeric: {exc}") from None
        bad = ~np.isfinite(a)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"MACD-V column {col!r} has a non-finite value at row {row}: {a[row]!r}")
        arrays.append(a)
    if "synthetic" in df.columns:
        syn = df["synthetic"]
        if syn.isna().any():
            raise ValueError("MACD-V column 'synthetic' has missing values; use True/False")
        synthetic = syn.to_numpy(dtype=bool)
    else:
        synthetic = np.zeros(len(df), dtype=bool)
    return arrays[0], arrays[1], arrays[2], synthetic


def _core(df: pd.DataFrame) -> tuple[dict[str, pd.Series], np.ndarray]:
    high, low, close, synthetic = _validated(df)
    idx = pd.RangeIndex(len(high))
    close_s = pd.Series(close, index=idx)
    prev_close = np.roll(close, 1)
    tr = np.maximum(high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close)))
    if len(tr):
        tr[0] = high[0] - low[0]
    tr[synthetic] = np.nan  # a flat invented bar says nothing about volatility

    fast = _seeded_ema(close_s, FAST, FAST_ALPHA)
    slow = _seeded_ema(close_s, SLOW, SLOW_ALPHA)
    atr = _seeded_ema(pd.Series(tr, index=idx), ATR, 1.0 / ATR)
    macd_v = (fast - slow) / atr.where(atr > 0) * 100.0  # ATR 0 -> NaN, never inf
    signal = _seeded_ema(macd_v, SIGNAL, SIGNAL_ALPHA).where(macd_v.notna())
    cols = {
        "fast_ema": fast,
        "slow_ema": slow,
        "atr": atr,
        "macd_v": macd_v,
        "signal": signal,
        "histogram": macd_v - signal,
    }
    return cols, synthetic


def macd_v_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every intermediate of MACD-V per bar: fast_ema, slow_ema, atr, macd_v, signal, histogram,
    gap_ratio, stage. NaN (None for stage) where not defined; the index is the input's."""
    cols, synthetic = _core(df)
    out = pd.DataFrame(cols)
    out["gap_ratio"] = pd.Series(synthetic.astype(float)).rolling(GAP_WINDOW, min_periods=1).mean().to_numpy()
    stages = [
        stage(None if np.isnan(m) else float(m), None if np.isnan(s) else float(s))
        for m, s in zip(out["macd_v"].to_numpy(), out["signal"].to_numpy(), strict=True)
    ]
    # object dtype keeps None as None (pandas 3 would turn it into NaN in a string column)
    out["stage"] = pd.Series(stages, index=out.index, dtype=object)
    out.index = df.index
    return out


def macd_v_series(df: pd.DataFrame) -> pd.DataFrame:
    """MACD-V, signal and histogram per bar (NaN while not valid), same index as `df`.

    `df` has columns high, low, close and optionally a bool `synthetic` (gap-filled bars).
    Raises ValueError on missing columns or non-finite prices.
    """
    cols, _ = _core(df)
    out = pd.DataFrame({k: cols[k] for k in ("macd_v", "signal", "histogram")})
    out.index = df.index
    return out
