"""BinanceAdapter: Binance spot; BinanceUSAdapter: Binance.US (same protocol, other URLs and
weight budget)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ExchangeConfig, LiveStream, StreamListener
from streaming.adapters.binance.live import FRAME_INTERVAL_S, BinanceLiveStream
from streaming.adapters.binance.parse import INTERVAL_MS
from streaming.adapters.binance.rest import BinanceRest
from streaming.adapters.rest_backed import RestBackedAdapter
from streaming.timeframes import TIMEFRAME_MS, TIMEFRAMES

STREAMS_PER_CONNECTION = 1024
LIFETIME_S = 24 * 3600.0


class BinanceAdapter(RestBackedAdapter):
    # every Livermore timeframe is a native kline interval
    native_timeframes: ClassVar[frozenset[str]] = frozenset(TIMEFRAMES) & frozenset(INTERVAL_MS)
    rest_timeframes: ClassVar[frozenset[str]] = frozenset(INTERVAL_MS) & frozenset(TIMEFRAME_MS)
    exchange_intervals: ClassVar[frozenset[str]] = frozenset(INTERVAL_MS)
    max_streams_per_connection: ClassVar[int | None] = STREAMS_PER_CONNECTION
    connection_lifetime_s: ClassVar[float | None] = LIFETIME_S
    frame_interval_s: ClassVar[float] = FRAME_INTERVAL_S
    # public documentation: REST weight per minute, 300 new connections per 5 minutes per IP,
    # 1024 streams per connection, 5 incoming messages per second, 24 h per connection
    default_limits: ClassVar[Mapping[str, float]] = {
        "rest_weight_per_minute": 6000, "ws_connections_per_5m": 300,
        "ws_streams_per_connection": STREAMS_PER_CONNECTION, "ws_incoming_messages_per_second": 5,
        "ws_connection_lifetime_hours": LIFETIME_S / 3600}

    def __init__(self, config: ExchangeConfig, *, clock_ms: Callable[[], int] | None = None,
                 watchdog_s: float = 60.0, backoff: Backoff | None = None,
                 lifetime_s: float | None = None, check_exchange_info: bool = True,
                 gapfill_concurrency: int = 8, stale_after_s: float = 60.0) -> None:
        super().__init__(config, clock_ms)
        self._stale_after_s = stale_after_s
        self.rest = BinanceRest(config.rest_url, dict(config.api_limits), config.name)
        self._watchdog_s = watchdog_s
        self._backoff = backoff
        self._lifetime_s = lifetime_s
        self._check_exchange_info = check_exchange_info
        self._gapfill_concurrency = gapfill_concurrency

    def rest_symbol(self, symbol: str) -> str:
        return symbol.upper()

    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        return BinanceLiveStream(self.config, self.rest, symbols, self.require_native(timeframes), listener,
                                 watchdog_s=self._watchdog_s, backoff=self._backoff, lifetime_s=self._lifetime_s,
                                 check_exchange_info=self._check_exchange_info, clock_ms=self._clock_ms,
                                 gapfill_concurrency=self._gapfill_concurrency,
                                 stale_after_s=self._stale_after_s)


class BinanceUSAdapter(BinanceAdapter):
    default_limits: ClassVar[Mapping[str, float]] = {**BinanceAdapter.default_limits, "rest_weight_per_minute": 1200}
