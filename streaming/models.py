"""Normalised, typed values that flow through the live side.

frame -> CandleUpdate -> closed Candle -> store -> close event -> indicator -> alert.
msgspec Structs: cheap to build on the hot path and encoded to JSON without a dict detour.
"""

from __future__ import annotations

from typing import Literal

import msgspec

CandleSource = Literal["websocket", "rest", "aggregate"]


class Candle(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One OHLCV bar. `timestamp` is the bar's open time in epoch milliseconds (UTC)."""

    timestamp: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    # a flat bar invented to fill a bucket with no trades (see docs macd-v.md, informative ATR)
    synthetic: bool = False


class CandleUpdate(msgspec.Struct, frozen=True, gc=False):
    """A candle as an adapter saw it: still forming (closed=False) or final (closed=True)."""

    exchange: str
    symbol: str
    timeframe: str
    candle: Candle
    closed: bool
    source: CandleSource = "websocket"


class ProductStats(msgspec.Struct, frozen=True):
    """24 h statistics of one spot product, as the exchange's REST API reports them."""

    exchange: str
    symbol: str
    base: str
    quote: str
    price: float
    volume_24h: float  # in base units
    quote_volume_24h: float  # in quote units
    tradable: bool = True
    status: str = "online"
    # Coinbase -USDC products alias their -USD twin; ranking counts them once
    alias_of: str | None = None


class Balance(msgspec.Struct, frozen=True):
    asset: str
    free: float
    locked: float = 0.0

    @property
    def total(self) -> float:
        return self.free + self.locked
