"""BinanceAdapter: Binance spot (and Binance.US: same protocol, other URLs and weight budget)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import Credentials, ExchangeAdapter, ExchangeConfig, LiveStream, StreamListener
from streaming.adapters.binance.live import BinanceLiveStream
from streaming.adapters.binance.rest import BinanceRest
from streaming.adapters.symbols import require_symbol
from streaming.models import Balance, Candle, ProductStats
from streaming.timeframes import timeframe_ms


class BinanceAdapter(ExchangeAdapter):
    def __init__(self, config: ExchangeConfig, *, clock_ms: Callable[[], int] | None = None,
                 watchdog_s: float = 60.0, backoff: Backoff | None = None,
                 lifetime_s: float | None = None, check_exchange_info: bool = True) -> None:
        super().__init__(config)
        self.rest = BinanceRest(config.rest_url, dict(config.api_limits), config.name)
        self._clock_ms = clock_ms
        self._watchdog_s = watchdog_s
        self._backoff = backoff
        self._lifetime_s = lifetime_s
        self._check_exchange_info = check_exchange_info

    def now_ms(self) -> int:
        return int(self._clock_ms()) if self._clock_ms is not None else int(time.time() * 1000)

    async def fetch_products(self) -> list[ProductStats]:
        return await self.rest.products()

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
        require_symbol(symbol, self.name)
        step = timeframe_ms(timeframe)
        now = self.now_ms()
        end = min(end_ms, now - now % step)  # only closed bars
        if end <= start_ms:
            return []
        return await self.rest.candles(symbol.upper(), timeframe, start_ms, end)

    async def fetch_balances(self, credentials: Credentials) -> list[Balance]:
        return await self.rest.balances(credentials)

    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        return BinanceLiveStream(self.config, self.rest, symbols, timeframes, listener,
                                 watchdog_s=self._watchdog_s, backoff=self._backoff, lifetime_s=self._lifetime_s,
                                 check_exchange_info=self._check_exchange_info)

    async def aclose(self) -> None:
        await self.rest.close()
