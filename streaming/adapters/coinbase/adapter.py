"""CoinbaseAdapter: Coinbase Advanced Trade behind the ExchangeAdapter interface."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import Credentials, ExchangeAdapter, ExchangeConfig, LiveStream, StreamListener
from streaming.adapters.coinbase.live import CoinbaseLiveStream
from streaming.adapters.coinbase.rest import CoinbaseRest
from streaming.adapters.symbols import require_symbol
from streaming.models import Balance, Candle, ProductStats
from streaming.timeframes import timeframe_ms


class CoinbaseAdapter(ExchangeAdapter):
    """Streams 5m candles only (the candles channel has no other size); REST serves all sizes.

    `clock_ms` is the exchange's time (default: local wall clock) used to return only closed
    candles from fetch_candles; `grace_ms` is how long after a bucket's end a quiet bucket is
    closed by the clock.
    """

    def __init__(self, config: ExchangeConfig, *, clock_ms: Callable[[], int] | None = None,
                 grace_ms: int = 5_000, watchdog_s: float = 30.0, backoff: Backoff | None = None) -> None:
        super().__init__(config)
        self.rest = CoinbaseRest(config.rest_url, dict(config.api_limits), config.name)
        self._clock_ms = clock_ms
        self._grace_ms = grace_ms
        self._watchdog_s = watchdog_s
        self._backoff = backoff

    def now_ms(self) -> int:
        return int(self._clock_ms()) if self._clock_ms is not None else int(time.time() * 1000)

    async def fetch_products(self) -> list[ProductStats]:
        return await self.rest.products()

    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
        require_symbol(symbol, self.name)
        step = timeframe_ms(timeframe)
        # only closed bars: the newest one may still be forming
        end = min(end_ms, self.now_ms() - self.now_ms() % step)
        if end <= start_ms:
            return []
        return await self.rest.candles(symbol, timeframe, start_ms, end)

    async def fetch_balances(self, credentials: Credentials) -> list[Balance]:
        return await self.rest.balances(credentials)

    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        # timeframes other than 5m are aggregated downstream from the 5m closes
        return CoinbaseLiveStream(self.config, self.rest, symbols, listener, grace_ms=self._grace_ms,
                                  watchdog_s=self._watchdog_s, clock_ms=self._clock_ms, backoff=self._backoff)

    async def aclose(self) -> None:
        await self.rest.close()
