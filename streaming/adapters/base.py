"""The one interface every exchange adapter implements.

An adapter turns one exchange's wire protocol into the normalised values of streaming.models.
It owns protocol concerns (subscribing, acks, heartbeats/pings, reconnect with backoff,
resubscribe and REST fill of the gap, candle closing rules). It does no storage: it hands
every CandleUpdate to a StreamListener, closed candles in open-time order per
(symbol, timeframe), each closed bar at least once (the store downstream is idempotent).
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from streaming.models import Balance, Candle, CandleUpdate, ProductStats
from streaming.timeframes import TIMEFRAME_MS

if TYPE_CHECKING:
    from streaming.adapters.skips import SkipCounter


class ConnectionState(enum.StrEnum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"


class AdapterError(Exception):
    """A failure the user can act on; the message says what to do."""


class UnknownSymbolError(AdapterError):
    pass


class AuthError(AdapterError):
    pass


class RateLimitedError(AdapterError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class ExchangeConfig:
    """What an adapter needs from an `exchanges` row (URLs already overridden by environment)."""

    exchange_id: int
    name: str  # coinbase, binance, binance_us
    ws_url: str
    rest_url: str
    api_limits: Mapping[str, Any] = field(default_factory=dict)
    timeframes: tuple[str, ...] = ("5m", "15m", "1h", "4h", "1d")


@dataclass(frozen=True)
class Credentials:
    """Secrets resolved from the environment variables a user_exchanges row names. Never logged."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:  # secrets never reach logs
        return "Credentials(api_key=***, api_secret=***)"

    __str__ = __repr__


class StreamListener(Protocol):
    def on_candle(self, update: CandleUpdate) -> None:
        """Forming and closed candles. Must be fast and must not raise."""

    def on_state(self, state: ConnectionState, detail: str | None = None) -> None:
        """Connection lifecycle (connecting, connected, disconnected with reason, error)."""

    def on_rejected(self, symbols: list[str], reason: str) -> None:
        """Symbols the exchange (or the keyspace check) refused: reported, never silently lost."""


def report_stream_health(listener: object, symbol: str, timeframe: str, stale: bool, detail: str) -> None:
    """Tell the listener a stream went stale or recovered, if it listens for that
    (`on_stream_health(symbol, timeframe, stale, detail)`; optional, unlike the StreamListener methods)."""
    hook = getattr(listener, "on_stream_health", None)
    if hook is not None:
        hook(symbol, timeframe, stale, detail)


class LiveStream(ABC):
    """A running market-data subscription; may hold several WebSocket connections."""

    @abstractmethod
    async def run(self) -> None:
        """Connect and stream until close(); reconnects by itself. Returns after close()."""

    @abstractmethod
    async def subscribe(self, symbols: Iterable[str]) -> None:
        """Add symbols without reconnecting the existing ones."""

    @abstractmethod
    async def unsubscribe(self, symbols: Iterable[str]) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def symbols(self) -> frozenset[str]: ...

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Counters: frames, skipped frames per kind, reconnects, gaps, gap-filled candles..."""

    def hold_for_warm_up(self, symbols: Iterable[str]) -> None:  # noqa: B027 - optional: see warmed_up
        """Before `run`/`subscribe`: keep the live candles of `symbols` until `warmed_up` says
        their history is stored (the warm-up runs while the stream connects)."""

    def waiting(self, symbol: str) -> bool:
        """Whether live candles of `symbol` are held right now (a warm-up or a REST fill)."""
        return False

    def warmed_up(self, symbol: str, timeframe: str, newest: int | None) -> None:  # noqa: B027
        """The warm-up stored history of (symbol, timeframe) up to the bar opening at `newest`
        (None: nothing stored): the bars after it, up to the first held live candle, come from
        the exchange's REST (each closed exactly once), then the held candles in order. An adapter
        that holds nothing needs nothing here."""

    def stale_streams(self) -> list[tuple[str, str]]:
        """The (symbol, timeframe) streams with no frame past their threshold now, sorted."""
        return []


def _tf_order(tf: str) -> int:
    return TIMEFRAME_MS.get(tf, 0)


def live_stats(counts: Mapping[str, int], book_counts: Mapping[str, int], skips: SkipCounter,
               symbols: int) -> dict[str, Any]:
    """What every LiveStream.stats() starts with: its own counters, its candle book's, the
    skipped frames per kind and in total, and how many symbols it streams."""
    out: dict[str, Any] = dict(counts)
    out.update(book_counts)
    out["skipped"] = skips.as_dict()
    out["skipped_total"] = skips.total
    out["symbols"] = symbols
    return out


class ExchangeAdapter(ABC):
    """One exchange. Subclasses declare what the exchange can do as class attributes; the factory,
    the worker and the pipeline ask these, never the exchange's name (streaming/adapters/_template
    lists what a new exchange must provide)."""

    # Livermore timeframes the WebSocket streams natively; the pipeline aggregates the others from
    # the smallest native one
    native_timeframes: ClassVar[frozenset[str]]
    # Livermore timeframes (streaming.timeframes.TIMEFRAME_MS) fetch_candles serves over REST
    rest_timeframes: ClassVar[frozenset[str]]
    # every interval name the exchange itself knows: an `exchanges` row may list any of them in
    # ws_timeframes; those Livermore does not keep are ignored there, anything else is an error
    exchange_intervals: ClassVar[frozenset[str]]
    # the exchange's published limits (keys as in the `exchanges.api_limits` column, whose values
    # override these); every rate limit the adapter honours comes from the merged mapping
    default_limits: ClassVar[Mapping[str, float]]
    # streams one WebSocket connection may carry (None: no documented limit, one connection)
    max_streams_per_connection: ClassVar[int | None] = None
    # seconds a WebSocket connection may live before the exchange closes it (None: no limit)
    connection_lifetime_s: ClassVar[float | None] = None
    # seconds between two frames of one live stream while its market trades: a stream quiet for
    # this plus the stale threshold is stale (streaming.adapters.staleness)
    frame_interval_s: ClassVar[float] = 2.0

    def __init__(self, config: ExchangeConfig) -> None:
        self.config = config

    @classmethod
    def require_native(cls, timeframes: Iterable[str]) -> list[str]:
        """`timeframes` in order without repeats, or AdapterError naming those the WebSocket cannot
        stream (they are the pipeline's to aggregate, never the adapter's)."""
        wanted = list(dict.fromkeys(timeframes))
        refused = [tf for tf in wanted if tf not in cls.native_timeframes]
        if refused:
            raise AdapterError(f"{cls.__name__} cannot stream {', '.join(map(str, refused))} natively; its WebSocket "
                               f"streams {', '.join(sorted(cls.native_timeframes, key=_tf_order))} (aggregate the "
                               f"others from those closes)")
        if not wanted:
            raise AdapterError(f"{cls.__name__}.live needs at least one timeframe")
        return wanted

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    async def fetch_products(self) -> list[ProductStats]:
        """All spot products with 24 h stats."""

    @abstractmethod
    async def fetch_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[Candle]:
        """Closed candles with open time in [start_ms, end_ms), oldest first, paginated."""

    @abstractmethod
    async def fetch_balances(self, credentials: Credentials) -> list[Balance]: ...

    @abstractmethod
    def live(self, symbols: Iterable[str], timeframes: Iterable[str], listener: StreamListener) -> LiveStream:
        """Build (not start) a live stream; `await stream.run()` connects."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook: adapters without sessions need nothing
        """Release HTTP sessions."""
