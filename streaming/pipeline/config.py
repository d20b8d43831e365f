"""Pipeline settings and the symbol -> storage pool mapping (from the symbol universe)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from streaming.clock import clock_from_env
from streaming.contracts.universe import UniverseError, decode_entry
from streaming.keys import validate_symbol
from streaming.store.candles import DEFAULT_MAX_CANDLES, DEFAULT_USER_TTL_S, StoreLimits
from streaming.timeframes import timeframe_ms

# the timeframe every exchange streams natively; the others may be aggregated from it
BASE = "5m"

Pool = Literal["shared", "user"]


@dataclass(frozen=True)
class SymbolPool:
    """Where a symbol's candles go: `shared` (candles:...) or `user` (usercandles:{user}:... per user)."""

    pool: Pool = "shared"
    users: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.pool not in ("shared", "user"):
            raise ValueError(f"pool must be 'shared' or 'user', got {self.pool!r}")
        for u in self.users:
            if isinstance(u, bool) or not isinstance(u, int) or u < 0:
                raise ValueError(f"user ids must be non-negative integers, got {u!r}")
        if self.pool == "user" and not self.users:
            raise ValueError("a 'user' pool needs at least one user id")

    @property
    def user_ids(self) -> tuple[int, ...]:
        """User-scoped keys to write; empty = the shared key."""
        return self.users if self.pool == "user" else ()


SHARED = SymbolPool()


def pools_from_universe(universe: Mapping[str, Any]) -> dict[str, SymbolPool]:
    """The `symbols` of a universe document (decoded JSON) as pools; a bad entry raises ValueError naming it."""
    symbols = universe.get("symbols") if isinstance(universe, Mapping) else None
    if not isinstance(symbols, list):
        raise ValueError("universe JSON must have a 'symbols' list")
    out: dict[str, SymbolPool] = {}
    for i, item in enumerate(symbols):
        try:
            entry = decode_entry(item)
        except UniverseError as exc:
            raise ValueError(f"universe symbols[{i}]: {exc}") from None
        out[entry.symbol] = SymbolPool(entry.pool, entry.users)
    return out


def normalize_pools(pools: Mapping[str, SymbolPool] | Iterable[str]) -> dict[str, SymbolPool]:
    if isinstance(pools, Mapping):
        out = {}
        for sym, pool in pools.items():
            validate_symbol(sym)
            if not isinstance(pool, SymbolPool):
                raise ValueError(f"pool of {sym!r} must be a SymbolPool, got {type(pool).__name__}")
            out[sym] = pool
        return out
    return {validate_symbol(s): SHARED for s in pools}


def aggregated_timeframes(timeframes: Sequence[str], native: Iterable[str] | None,
                          aggregate: bool | None = None) -> tuple[str, ...]:
    """The timeframes of `timeframes` a pipeline builds from closed BASE candles: those not in
    `native` (the exchange's native timeframes; None = every timeframe is native), or all but
    BASE (aggregate=True), or none (aggregate=False). Nothing is built without BASE."""
    if isinstance(native, str):
        raise ValueError(f"native_timeframes must be a collection of timeframes, got {native!r}")
    if native is not None:
        native = frozenset(native)
        for tf in native:
            timeframe_ms(tf)  # UnknownTimeframe names the bad one
    if BASE not in timeframes or aggregate is False:
        return ()
    if aggregate is True:
        return tuple(tf for tf in timeframes if tf != BASE)
    if native is None or BASE not in native:
        return ()
    return tuple(tf for tf in timeframes if tf not in native)


@dataclass(frozen=True)
class PipelineConfig:
    max_candles: int = DEFAULT_MAX_CANDLES  # per candle ZSET
    user_ttl_s: int = DEFAULT_USER_TTL_S  # user-scoped ZSETs, refreshed on every write
    cooldown_ms: int = 300_000  # per (exchange, symbol, timeframe, alert label)
    alerts_stream_maxlen: int = 100_000
    batch_max: int = 512  # closes per Redis round trip (one script call: bounds how long Redis is busy)
    # script calls in flight from the run loop: the next batch is prepared while Redis runs the last
    pipeline_depth: int = 3
    warmup_candles: int = 300  # closed candles per (symbol, timeframe) before going live
    warmup_concurrency: int = 4  # REST requests in flight during warm-up (the adapter also rate-limits)
    # build the larger timeframes from closed 5m: None = those the exchange does not stream
    # natively (CandlePipeline's native_timeframes), True = all of them, False = none
    aggregate: bool | None = None
    aggregate_grace_ms: int = 120_000  # the clock closes an aggregate bucket this long after it ended
    flush_interval_s: float = 5.0
    # compare aggregated closes with the exchange's own REST candles; None = whenever the pipeline
    # aggregates and has the adapter (the worker passes it), True = required, False = never
    reconcile: bool | None = None
    reconcile_delay_s: float = 60.0  # the exchange needs a moment to finalise its bar
    reconcile_concurrency: int = 2
    reconcile_queue_max: int = 10_000
    # wall time, or the simulator's clock in offline mode (streaming.clock)
    clock_ms: Callable[[], int] = field(default_factory=clock_from_env, compare=False)

    def __post_init__(self) -> None:
        for name in ("batch_max", "pipeline_depth", "warmup_candles", "warmup_concurrency", "reconcile_concurrency",
                     "reconcile_queue_max", "alerts_stream_maxlen"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"PipelineConfig.{name} must be a positive integer, got {v!r}")
        for name in ("cooldown_ms", "aggregate_grace_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"PipelineConfig.{name} must be a non-negative integer, got {v!r}")
        for name in ("flush_interval_s", "reconcile_delay_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
                raise ValueError(f"PipelineConfig.{name} must be a non-negative number, got {v!r}")
        StoreLimits(self.max_candles, self.user_ttl_s)  # validates

    @property
    def store_limits(self) -> StoreLimits:
        return StoreLimits(self.max_candles, self.user_ttl_s)
