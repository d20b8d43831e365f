"""A small Python client for Livermore's Redis outputs: alerts, candle closes, indicators, candles.

    from streaming.client import LivermoreClient

    client = LivermoreClient("redis://127.0.0.1:6379/0")
    for alert in client.alerts(exchanges=["coinbase"]):        # blocking iterator of dicts
        print(alert["symbol"], alert["label"], alert["macd_v"])

    async for close in client.candle_closes(exchanges=[1], timeframe="1h"):   # or asynchronously
        ...

    client.latest_indicator(1, "BTC-USD", "5m")   # {"timestamp": ..., "macd_v": ..., ...} or None
    client.candles(1, "BTC-USD", "5m", limit=300) # [Candle, ...] oldest first

Exchanges are given by id or by name (resolved through the `exchanges:by-name` HASH the
platform keeps in Redis). The iterators survive Redis restarts: they reconnect with backoff and
subscribe again (`on_status` hears about it), and raise RedisUnavailable when Redis stays away
longer than `reconnect_timeout` (default 60 s). Pub/sub is fire-and-forget, so after a reconnect
`alerts()` reads the alerts published meanwhile from the durable stream `stream:alerts`; candle
closes have no stream (the closed candles themselves are in Redis: `candles()`).
See streaming/subscription.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, cast

import redis

from streaming import exchange_ids, keys
from streaming.errors import UsageError, shown
from streaming.models import Candle
from streaming.redis_clients import sync_client
from streaming.store.codec import decode_candle
from streaming.subscription import DEFAULT_RECONNECT_TIMEOUT_S, Received, RedisUnavailable, Subscription

__all__ = ["LivermoreClient", "Received", "RedisUnavailable", "Subscription", "UnknownExchange"]


class UnknownExchange(ValueError):
    pass


class LivermoreClient:
    def __init__(self, redis_url: str, *, reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT_S,
                 on_status: Callable[[str], None] | None = None) -> None:
        self.url = redis_url
        self.redis = sync_client(redis_url)
        self.reconnect_timeout = reconnect_timeout
        self.on_status = on_status

    @classmethod
    def from_env(cls, *, offline: bool = False, **options: Any) -> LivermoreClient:
        """The Redis of this machine's Livermore: LIVERMORE_REDIS_URL, or the embedded server of LIVERMORE_HOME
        (of its offline home, that of `livermore up --offline`, with `offline=True`)."""
        from streaming.settings import load_settings, resolve_redis_url

        return cls(resolve_redis_url(load_settings(offline=offline)), **options)

    def _subscription(self, patterns: list[str], timeout: float | None, **options: Any) -> Subscription:
        return Subscription(self.url, patterns, timeout, reconnect_timeout=self.reconnect_timeout,
                            on_status=self.on_status, **options)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> LivermoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exchange_id(self, exchange: int | str) -> int:
        """An id as is; a name through the `exchanges:by-name` HASH (UnknownExchange if absent)."""
        if isinstance(exchange, int) and not isinstance(exchange, bool):
            return exchange
        if isinstance(exchange, str) and exchange.isdigit():
            return int(exchange)
        by_name = exchange_ids.from_redis(self.redis)
        if exchange in by_name:
            return by_name[exchange]
        known = ", ".join(sorted(by_name)) or "(none registered in Redis yet)"
        raise UnknownExchange(f"unknown exchange {exchange!r}; known exchanges: {known}")

    def _ids(self, exchanges: Iterable[int | str] | None) -> list[int] | None:
        return None if exchanges is None else [self.exchange_id(e) for e in exchanges]

    def alerts(self, exchanges: Iterable[int | str] | None = None, timeout: float | None = None) -> Subscription:
        """Alerts of the given exchanges (all when None) as they fire."""
        ids = self._ids(exchanges)
        if ids is None:
            return self._subscription([keys.alerts_channel("*")], timeout, replay_alerts=True)
        return self._subscription([], timeout, replay_alerts=True, exchange_ids=ids,
                                  channels=[keys.alerts_channel(i) for i in ids])

    def candle_closes(self, exchanges: Iterable[int | str] | None = None, symbol: str = "*", timeframe: str = "*",
                      timeout: float | None = None) -> Subscription:
        """Candle-close events, optionally filtered by symbol and timeframe."""
        ids = self._ids(exchanges)
        if symbol != "*":
            keys.validate_symbol(symbol)
        patterns = [keys.candle_close_pattern(i, symbol, timeframe) for i in (ids if ids is not None else ["*"])]
        return self._subscription(patterns, timeout)

    def latest_indicator(self, exchange_id: int | str, symbol: str, timeframe: str) -> dict[str, Any] | None:
        key = keys.indicator(self.exchange_id(exchange_id), symbol, timeframe)
        raw = cast("bytes | str | None", self.redis.get(key))
        return None if raw is None else json.loads(raw)

    def candles(self, exchange_id: int | str, symbol: str, timeframe: str, limit: int = 100,
                user_ids: Iterable[int] = ()) -> list[Candle]:
        """The newest `limit` closed candles, oldest first: shared key first, then user-scoped ones."""
        ex = self.exchange_id(exchange_id)
        for k in [keys.candles(ex, symbol, timeframe)] + [keys.user_candles(u, ex, symbol, timeframe)
                                                          for u in user_ids]:
            raw: list[str] = self.redis.zrange(k, -limit, -1) if limit > 0 else []  # type: ignore[assignment]
            if raw:
                return [decode_candle(m) for m in raw]
        return []


# --- helpers of the `livermore alerts` / `livermore candles` consumers -----------------------


def resolve_exchanges(client: redis.Redis, names: list[str] | None, settings: Any) -> dict[int, str]:
    """{id: name} for the names given (all known when None): Redis HASH first, else the database."""
    by_name = exchange_ids.from_redis(client)
    if not by_name:
        by_name = _from_database(settings)
    if names is None:
        return {i: n for n, i in by_name.items()}
    out = {}
    for name in names:
        if name.isdigit():
            out[int(name)] = next((n for n, i in by_name.items() if i == int(name)), name)
        elif name in by_name:
            out[by_name[name]] = name
        else:
            known = ", ".join(sorted(by_name)) or "(none: run `livermore db upgrade` or start the platform)"
            raise UsageError(f"unknown exchange {shown(name, 40)}; known exchanges: {known}")
    return out


def _from_database(settings: Any) -> dict[str, int]:
    try:
        from streaming.db.engine import make_engine

        engine = make_engine(settings.database_url.get_secret_value())
    except Exception:  # an unusable database URL only means: no names to resolve
        return {}
    try:
        return exchange_ids.from_database(engine)
    finally:
        engine.dispose()


def ms_iso(ms: Any) -> str:
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ms)


def num(v: Any, fmt: str = "{:.2f}") -> str:
    return "-" if v is None else fmt.format(v) if isinstance(v, int | float) else str(v)


def alert_line(a: dict[str, Any]) -> str:
    return (f"{ms_iso(a.get('timestamp'))} {a.get('source_exchange', a.get('source_exchange_id'))} "
            f"{a.get('symbol')} {a.get('timeframe')} {a.get('label')} MACD-V {num(a.get('macd_v'))} "
            f"signal {num(a.get('signal'))} hist {num(a.get('histogram'))} price {num(a.get('price'), '{:g}')}")


def candle_line(c: dict[str, Any], exchange: str | None = None) -> str:
    g = "{:g}"
    return (f"{ms_iso(c.get('timestamp'))} {exchange or c.get('exchange', c.get('exchange_id', ''))} "
            f"{c.get('symbol', '')} {c.get('timeframe', '')} O {num(c.get('open'), g)} H {num(c.get('high'), g)} "
            f"L {num(c.get('low'), g)} C {num(c.get('close'), g)} V {num(c.get('volume'), g)}"
            + (f" ({c['source']})" if c.get("source") else "")).replace("  ", " ")
