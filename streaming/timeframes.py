"""The timeframes Livermore keeps, and UTC bucket arithmetic on epoch milliseconds."""

from __future__ import annotations

TIMEFRAMES: tuple[str, ...] = ("5m", "15m", "1h", "4h", "1d")

TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "1d": 86_400_000,
}


class UnknownTimeframe(ValueError):
    pass


def timeframe_ms(timeframe: str) -> int:
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise UnknownTimeframe(
            f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}"
        ) from None


def bucket_start(ts_ms: int, timeframe: str) -> int:
    """Open time of the UTC-aligned bucket of `timeframe` that contains `ts_ms`."""
    size = timeframe_ms(timeframe)
    return ts_ms - ts_ms % size
