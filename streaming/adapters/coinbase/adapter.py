"""CoinbaseAdapter: Coinbase Advanced Trade behind the ExchangeAdapter interface."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ExchangeConfig, LiveStream, StreamListener
from streaming.adapters.coinbase.live import CoinbaseLiveStream
from streaming.adapters.coinbase.rest import CoinbaseRest
from streaming.adapters.rest_backed import RestBackedAdapter


class CoinbaseAdapter(RestBackedAdapter):
    """Streams 5m candles only (the candles channel has no other size); REST serves all sizes.

    `clock_ms` is the exchange's time (default: local wall clock) used to return only closed
    candles from fetch_candles and to close quiet buckets; `grace_ms` is how long after a
    bucket's end a quiet bucket is closed by the clock (default: 5 s of exchange time, but never
    less than 1.5 s of real time when the clock runs faster than real time).
    """

    def __init__(self, config: ExchangeConfig, *, clock_ms: Callable[[], int] | None = None,
                 grace_ms: int | None = None, watchdog_s: float = 30.0, backoff: Backoff | None = None,
                 backfill_concurrency: int = 8) -> None:
        super().__init__(config, clock_ms)
        self.rest = CoinbaseRest(config.rest_url, dict(config.api_limits), config.name)
        self._grace_ms = grace_ms
        self._watchdog_s = watchdog_s
        self._backoff = backoff
        self._backfill_concurrency = backfill_concurrency

    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        # timeframes other than 5m are aggregated downstream from the 5m closes
        return CoinbaseLiveStream(self.config, self.rest, symbols, listener, grace_ms=self._grace_ms,
                                  watchdog_s=self._watchdog_s, clock_ms=self._clock_ms, backoff=self._backoff,
                                  backfill_concurrency=self._backfill_concurrency)
