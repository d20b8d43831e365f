"""BinanceAdapter: Binance spot (and Binance.US: same protocol, other URLs and weight budget)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ExchangeConfig, LiveStream, StreamListener
from streaming.adapters.binance.live import BinanceLiveStream
from streaming.adapters.binance.rest import BinanceRest
from streaming.adapters.rest_backed import RestBackedAdapter


class BinanceAdapter(RestBackedAdapter):
    def __init__(self, config: ExchangeConfig, *, clock_ms: Callable[[], int] | None = None,
                 watchdog_s: float = 60.0, backoff: Backoff | None = None,
                 lifetime_s: float | None = None, check_exchange_info: bool = True,
                 backfill_concurrency: int = 8) -> None:
        super().__init__(config, clock_ms)
        self.rest = BinanceRest(config.rest_url, dict(config.api_limits), config.name)
        self._watchdog_s = watchdog_s
        self._backoff = backoff
        self._lifetime_s = lifetime_s
        self._check_exchange_info = check_exchange_info
        self._backfill_concurrency = backfill_concurrency

    def rest_symbol(self, symbol: str) -> str:
        return symbol.upper()

    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        return BinanceLiveStream(self.config, self.rest, symbols, timeframes, listener,
                                 watchdog_s=self._watchdog_s, backoff=self._backoff, lifetime_s=self._lifetime_s,
                                 check_exchange_info=self._check_exchange_info, clock_ms=self._clock_ms,
                                 backfill_concurrency=self._backfill_concurrency)
