"""The candle store: closed candles in bounded Redis ZSETs, idempotent writes.

Shared (Tier 1) symbols live under `candles:{exchange}:{symbol}:{tf}`; symbols only some users
hold (Tier 2) under `usercandles:{user}:{exchange}:{symbol}:{tf}` with a TTL refreshed on
every write, so a symbol nobody holds any more expires by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from streaming import keys
from streaming.candle_checks import candle_defect
from streaming.models import Candle
from streaming.store import scripts
from streaming.store.codec import check_candle, decode_candle, encode_candle

DEFAULT_MAX_CANDLES = 1000
DEFAULT_USER_TTL_S = 24 * 3600


@dataclass(frozen=True)
class StoreLimits:
    max_candles: int = DEFAULT_MAX_CANDLES
    user_ttl_s: int = DEFAULT_USER_TTL_S

    def __post_init__(self) -> None:
        if isinstance(self.max_candles, bool) or not isinstance(self.max_candles, int) or self.max_candles < 1:
            raise ValueError(f"max_candles must be a positive integer, got {self.max_candles!r}")
        if isinstance(self.user_ttl_s, bool) or not isinstance(self.user_ttl_s, int) or self.user_ttl_s < 1:
            raise ValueError(f"user_ttl_s must be a positive number of seconds, got {self.user_ttl_s!r}")


def candle_keys(exchange_id: int, symbol: str, timeframe: str, user_ids: Iterable[int] = ()) -> list[str]:
    """Where a stream's candles go: the shared key, or one user-scoped key per holding user."""
    users = list(user_ids)
    if not users:
        return [keys.candles(exchange_id, symbol, timeframe)]
    return [keys.user_candles(u, exchange_id, symbol, timeframe) for u in users]


class CandleStore:
    """Async candle store over redis.asyncio; every write is one atomic Lua call."""

    def __init__(self, redis: aioredis.Redis, limits: StoreLimits | None = None) -> None:
        self.redis = redis
        self.limits = limits or StoreLimits()
        self._store = redis.register_script(scripts.STORE)
        self._advance = redis.register_script(scripts.ADVANCE_MARKER)

    def _ttl(self, user_ids: Sequence[int]) -> int:
        return self.limits.user_ttl_s if user_ids else 0

    async def write_closed(self, exchange_id: int, symbol: str, timeframe: str, candle: Candle,
                           user_id: int | None = None) -> bool:
        """Store one closed candle, replacing a stored one with the same open time.
        Returns True if the store changed (new bar or different values)."""
        return await self.write_many(exchange_id, symbol, timeframe, [candle],
                                     () if user_id is None else (user_id,)) > 0

    async def write_many(self, exchange_id: int, symbol: str, timeframe: str, candles: Iterable[Candle],
                         user_ids: Sequence[int] = ()) -> int:
        """Store many closed candles in one round trip; returns how many changed the store."""
        ks = candle_keys(exchange_id, symbol, timeframe, user_ids)
        ttl = self._ttl(user_ids)
        pipe = self.redis.pipeline(transaction=False)
        n = 0
        for c in candles:
            check_candle(c)
            if c.synthetic:
                continue  # gap fillers feed the indicator only; the store keeps what the exchange said
            await self._store(keys=ks, args=[c.timestamp, encode_candle(c), self.limits.max_candles, ttl],
                              client=pipe)
            n += 1
        if not n:
            return 0
        return sum(int(r) for r in await pipe.execute())

    async def advance_marker(self, exchange_id: int, symbol: str, timeframe: str, open_ms: int) -> int:
        """Treat every bar up to `open_ms` as published (warm-up history): later re-deliveries stay silent."""
        return int(await self._advance(keys=[keys.closed_marker(exchange_id, symbol, timeframe)], args=[open_ms]))

    async def read(self, exchange_id: int, symbol: str, timeframe: str, limit: int = DEFAULT_MAX_CANDLES,
                   user_ids: Iterable[int] = ()) -> list[Candle]:
        """The newest `limit` closed candles, oldest first: the shared key if it has any, else the
        first user-scoped key of `user_ids` that has any."""
        for k in [keys.candles(exchange_id, symbol, timeframe)] + [
            keys.user_candles(u, exchange_id, symbol, timeframe) for u in user_ids
        ]:
            raw = await self.redis.zrange(k, -limit, -1) if limit > 0 else []
            if raw:
                return _usable(raw)
        return []

    async def read_range(self, exchange_id: int, symbol: str, timeframe: str, start_ms: int, end_ms: int,
                         user_ids: Iterable[int] = ()) -> list[Candle]:
        """Closed candles with open time in [start_ms, end_ms), oldest first (same fallback as read)."""
        for k in [keys.candles(exchange_id, symbol, timeframe)] + [
            keys.user_candles(u, exchange_id, symbol, timeframe) for u in user_ids
        ]:
            raw = await self.redis.zrangebyscore(k, start_ms, f"({end_ms}")
            if raw:
                return _usable(raw)
        return []


def _usable(raw: Iterable[Any]) -> list[Candle]:
    """Decoded members, without any that cannot exist (stored before such candles were refused
    at the pipeline's boundary): a reader never rebuilds an indicator or aggregate from them."""
    out = []
    for m in raw:
        c = decode_candle(m)
        if candle_defect(c) is None:
            out.append(c)
    return out
