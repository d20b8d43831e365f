"""What a worker is told on its command line / environment, validated up front."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from streaming.control.heartbeat import default_worker_id
from streaming.control.shard import InvalidShard, Shard, parse_shard
from streaming.errors import UsageError, shown
from streaming.keys import InvalidSymbol, validate_symbol
from streaming.settings import LivermoreSettings, parse_user_id

_EXCHANGE_RE = re.compile(r"^[a-z0-9_]{1,32}$")
WORKER_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
ALL_EXCHANGES = "*"


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str = field(default_factory=default_worker_id)
    autostart: tuple[str, ...] = ()
    user: int | None = None
    # exchange name (or "*" for any exchange) -> explicit symbols, bypassing the universe
    symbols: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    shard: Shard | None = None
    warm_up: bool = True
    heartbeat_s: float = 2.0
    universe_check_s: float = 30.0
    connect_timeout_s: float = 60.0
    # a fresh worker id replays commands this young (commands sent before it was started)
    replay_s: float = 600.0
    stats_s: float = 5.0  # how often the stats snapshot of each exchange is written
    metrics_port: int | None = None  # Prometheus /metrics on 127.0.0.1 (None: not served)

    @property
    def shard_label(self) -> str | None:
        return self.shard.label if self.shard else None

    def explicit_symbols(self, exchange: str) -> tuple[str, ...] | None:
        return self.symbols.get(exchange) or self.symbols.get(ALL_EXCHANGES)


def parse_symbols(values: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """`--symbols BTC-USD,ETH-USD` (any exchange) or `--symbols binance=BTCUSDT,ETHUSDT`, repeatable."""
    out: dict[str, tuple[str, ...]] = {}
    for value in values:
        exchange, _, listed = value.rpartition("=")
        exchange = exchange.strip() or ALL_EXCHANGES
        if exchange != ALL_EXCHANGES and not _EXCHANGE_RE.match(exchange):
            raise UsageError(f"--symbols {shown(value)}: {shown(exchange, 40)} is not an exchange name "
                             "(e.g. coinbase=BTC-USD)")
        try:
            symbols = tuple(dict.fromkeys(validate_symbol(s.strip()) for s in listed.split(",") if s.strip()))
        except InvalidSymbol as exc:
            raise UsageError(f"--symbols: {str(exc)[:200]}") from None
        if not symbols:
            raise UsageError(f"--symbols {shown(value)} lists no symbol; use --symbols BTC-USD,ETH-USD")
        out[exchange] = out.get(exchange, ()) + tuple(s for s in symbols if s not in out.get(exchange, ()))
    return out


def parse_user(value: str | int | None, what: str = "--user") -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_user_id(value, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def build_config(*, settings: LivermoreSettings, worker_id: str | None = None, autostart: Sequence[str] = (),
                 user: str | None = None, symbols: Sequence[str] = (), shard: str | None = None,
                 warm_up: bool = True, universe_check_s: float | None = None,
                 connect_timeout_s: float = 60.0) -> WorkerConfig:
    """The worker's configuration from its options, with LIVERMORE_SYSTEM_USER,
    LIVERMORE_UNIVERSE_CHECK_S and LIVERMORE_METRICS_PORT (already validated) from `settings`."""
    for name in autostart:
        if not _EXCHANGE_RE.match(name):
            raise UsageError(f"--autostart {shown(name)} is not an exchange name (coinbase, binance, binance_us)")
    wid = worker_id or default_worker_id()
    if not WORKER_ID_RE.match(wid):
        raise UsageError(f"--worker-id {shown(wid)}: use letters, digits and . _ : - (at most 200)")
    try:
        parsed_shard = parse_shard(shard) if shard else None
    except InvalidShard as exc:
        raise UsageError(str(exc)) from None
    if not (math.isfinite(connect_timeout_s) and connect_timeout_s > 0):
        raise UsageError("--connect-timeout must be a positive number of seconds")
    return WorkerConfig(
        worker_id=wid, autostart=tuple(dict.fromkeys(autostart)),
        user=parse_user(user) if user is not None else settings.system_user,
        symbols=parse_symbols(symbols), shard=parsed_shard, warm_up=warm_up,
        universe_check_s=universe_check_s if universe_check_s is not None else settings.universe_check_s,
        connect_timeout_s=connect_timeout_s, metrics_port=settings.metrics_port or None,
    )
