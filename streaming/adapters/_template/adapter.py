"""Skeleton of a new exchange's adapter class (copy, rename, fill in; see README.md).

Not registered in the factory: it only shows the shape, and type-checks with the real pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from streaming.adapters._template.live import TemplateLiveStream
from streaming.adapters.base import ExchangeConfig, LiveStream, StreamListener
from streaming.adapters.rest_backed import RestBackedAdapter


class TemplateRest:
    """The REST client (required): wrap streaming.adapters.http.HttpClient with the exchange's
    rate limit (a TokenBucket or a weight budget) and parse bodies with pure functions."""

    def __init__(self, base_url: str, limits: dict[str, Any], exchange: str) -> None:
        self.base_url = base_url
        self.limits = limits
        self.exchange = exchange

    async def products(self) -> list[Any]:
        raise NotImplementedError("GET the product list with 24 h stats -> list[ProductStats]")

    async def candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Any]:
        raise NotImplementedError("closed candles of [start_ms, end_ms), oldest first, paginated")

    async def balances(self, credentials: Any) -> list[Any]:
        raise NotImplementedError("signed request -> list[Balance]; AuthError when refused")

    async def close(self) -> None:
        return None


class TemplateAdapter(RestBackedAdapter):
    # required capabilities (README.md explains each)
    native_timeframes: ClassVar[frozenset[str]] = frozenset({"5m"})
    rest_timeframes: ClassVar[frozenset[str]] = frozenset({"5m", "15m", "1h", "4h", "1d"})
    exchange_intervals: ClassVar[frozenset[str]] = frozenset({"1m", "5m", "15m", "1h", "4h", "1d"})
    default_limits: ClassVar[Mapping[str, float]] = {"ws_connections_per_second": 1, "rest_requests_per_second": 1}
    # optional capabilities
    max_streams_per_connection: ClassVar[int | None] = None
    connection_lifetime_s: ClassVar[float | None] = None

    def __init__(self, config: ExchangeConfig, *, clock_ms: Callable[[], int] | None = None,
                 stale_after_s: float = 60.0) -> None:
        super().__init__(config, clock_ms)  # fetch_products/candles/balances and aclose come from here
        self._stale_after_s = stale_after_s  # the factory passes it: hand it to a StaleTracker in live()
        self.rest = TemplateRest(config.rest_url, dict(config.api_limits), config.name)

    def rest_symbol(self, symbol: str) -> str:  # optional: the exchange's REST spelling
        return symbol

    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        return TemplateLiveStream(self.config, self.rest, symbols, self.require_native(timeframes), listener,
                                  clock_ms=self._clock_ms)
