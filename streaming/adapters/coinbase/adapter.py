"""CoinbaseAdapter: Coinbase Advanced Trade behind the ExchangeAdapter interface."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ExchangeConfig, LiveStream, StreamListener
from streaming.adapters.coinbase.live import FRAME_INTERVAL_S, CoinbaseLiveStream
from streaming.adapters.coinbase.rest import GRANULARITY, CoinbaseRest
from streaming.adapters.rest_backed import RestBackedAdapter
from streaming.timeframes import TIMEFRAME_MS


class CoinbaseAdapter(RestBackedAdapter):
    """Streams 5m candles only (the candles channel has no other size); REST serves all sizes.

    `clock_ms` is the exchange's time (default: local wall clock) used to return only closed
    candles from fetch_candles and to close quiet buckets; `grace_ms` is how long after a
    bucket's end a quiet bucket is closed by the clock (default: 5 s of exchange time, but never
    less than 1.5 s of real time when the clock runs faster than real time).
    """

    native_timeframes: ClassVar[frozenset[str]] = frozenset({"5m"})
    rest_timeframes: ClassVar[frozenset[str]] = frozenset(GRANULARITY) & frozenset(TIMEFRAME_MS)
    exchange_intervals: ClassVar[frozenset[str]] = frozenset(GRANULARITY)
    # public documentation: 8 connections and 8 unauthenticated messages per second per IP;
    # REST 10 public and 30 private requests per second
    default_limits: ClassVar[Mapping[str, float]] = {
        "ws_connections_per_second": 8, "ws_messages_per_second": 8, "rest_public_per_second": 10,
        "rest_private_per_second": 30}
    max_streams_per_connection: ClassVar[int | None] = None
    connection_lifetime_s: ClassVar[float | None] = None
    frame_interval_s: ClassVar[float] = FRAME_INTERVAL_S

    def __init__(self, config: ExchangeConfig, *, clock_ms: Callable[[], int] | None = None,
                 grace_ms: int | None = None, watchdog_s: float = 30.0, backoff: Backoff | None = None,
                 gapfill_concurrency: int = 8, stale_after_s: float = 60.0) -> None:
        super().__init__(config, clock_ms)
        self._stale_after_s = stale_after_s
        self.rest = CoinbaseRest(config.rest_url, dict(config.api_limits), config.name)
        self._grace_ms = grace_ms
        self._watchdog_s = watchdog_s
        self._backoff = backoff
        self._gapfill_concurrency = gapfill_concurrency

    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        self.require_native(timeframes)
        return CoinbaseLiveStream(self.config, self.rest, symbols, listener, grace_ms=self._grace_ms,
                                  watchdog_s=self._watchdog_s, clock_ms=self._clock_ms, backoff=self._backoff,
                                  gapfill_concurrency=self._gapfill_concurrency,
                                  stale_after_s=self._stale_after_s)
