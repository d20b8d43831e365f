"""The REST half every exchange adapter shares: products, closed candles only, balances, session close.

A subclass sets `self.rest` (an object with products(), candles(), balances() and close())
and implements live(); `rest_symbol` maps a symbol to the exchange's REST spelling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from streaming.adapters.base import Credentials, ExchangeAdapter, ExchangeConfig
from streaming.adapters.symbols import require_symbol
from streaming.models import Balance, Candle, ProductStats
from streaming.timeframes import timeframe_ms


class RestBackedAdapter(ExchangeAdapter):
    rest: Any

    def __init__(self, config: ExchangeConfig, clock_ms: Callable[[], int] | None = None) -> None:
        super().__init__(config)
        self._clock_ms = clock_ms

    def now_ms(self) -> int:
        """The exchange's time: `clock_ms` when given, else the local wall clock."""
        return int(self._clock_ms()) if self._clock_ms is not None else int(time.time() * 1000)

    def rest_symbol(self, symbol: str) -> str:
        return symbol

    async def fetch_products(self) -> list[ProductStats]:
        return await self.rest.products()

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
        require_symbol(symbol, self.name)
        step = timeframe_ms(timeframe)
        now = self.now_ms()
        end = min(end_ms, now - now % step)  # only closed bars: the newest one may still be forming
        if end <= start_ms:
            return []
        return await self.rest.candles(self.rest_symbol(symbol), timeframe, start_ms, end)

    async def fetch_balances(self, credentials: Credentials) -> list[Balance]:
        return await self.rest.balances(credentials)

    async def aclose(self) -> None:
        await self.rest.close()
