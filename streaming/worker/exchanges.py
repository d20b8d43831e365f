"""Where the worker reads exchange rows, users and positions: the database first, Redis second.

Dagster's `exchanges` asset mirrors every row into Redis (keys.exchange_meta), so a worker
that cannot reach the database still starts exchanges. The idle announce at start-up reads that
mirror first (`announced_rows`): an idle worker then never imports SQLAlchemy (~12 MB of its
resident set); the database is read when the mirror is empty and when an exchange starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, cast

import orjson
import redis.asyncio as aioredis

from streaming import keys
from streaming.errors import UsageError

if TYPE_CHECKING:
    from streaming.db.lazy_engine import Connectable

log = logging.getLogger(__name__)


class ExchangeNotFound(LookupError):
    pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


async def _db_rows(engine: Connectable) -> list[dict[str, Any]]:
    def read() -> list[dict[str, Any]]:
        from streaming.db.queries import list_exchanges

        with engine.connect() as conn:
            return list_exchanges(conn)

    return await asyncio.to_thread(read)


async def _redis_rows(redis: aioredis.Redis) -> list[dict[str, Any]]:
    rows = []
    for _name, exchange_id in (await cast("Awaitable[dict[Any, Any]]", redis.hgetall(keys.EXCHANGES_BY_NAME))).items():
        try:
            raw = await redis.get(keys.exchange_meta(int(exchange_id)))
            row = orjson.loads(raw) if raw else None
        except (ValueError, orjson.JSONDecodeError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


async def exchange_rows(engine: Connectable | None, redis: aioredis.Redis) -> list[dict[str, Any]]:
    if engine is not None:
        try:
            return await _db_rows(engine)
        except Exception as exc:  # unreachable or unmigrated database: Redis has a copy
            log.warning("exchange rows from the database failed (%s); using Redis", _first_line(exc))
    return await _redis_rows(redis)


async def announced_rows(engine: Connectable | None, redis: aioredis.Redis) -> list[dict[str, Any]]:
    """The exchanges an idle worker lists at start-up: Redis's mirror of the table, else the database."""
    try:
        rows = await _redis_rows(redis)
    except Exception as exc:  # Redis away for a moment: the database may still answer
        log.warning("exchange rows from Redis failed (%s); using the database", _first_line(exc))
        rows = []
    return rows or await exchange_rows(engine, redis)


async def find_exchange(name: str, engine: Connectable | None, redis: aioredis.Redis) -> dict[str, Any]:
    rows = await exchange_rows(engine, redis)
    for row in rows:
        if row.get("name") == name:
            return row
    known = ", ".join(sorted(str(r.get("name")) for r in rows)) or (
        "none found in the database or Redis: run `livermore db upgrade` or materialize `exchanges`")
    raise ExchangeNotFound(f"unknown exchange {name!r}; known exchanges: {known}")


def check_system_user(engine: Connectable, user_id: int) -> None:
    """--user must name a system user (users.is_system); raise UsageError otherwise."""
    import sqlalchemy as sa

    from streaming.db.schema import users

    with engine.connect() as conn:
        row = conn.execute(sa.select(users.c.id, users.c.is_system).where(users.c.id == user_id)).first()
    if row is None:
        raise UsageError(f"user {user_id} does not exist; create it or pass another --user / LIVERMORE_SYSTEM_USER")
    if not row.is_system:
        raise UsageError(f"user {user_id} is not a system user (users.is_system); unattended workers run as one")


async def position_symbols(engine: Connectable | None, user_id: int, exchange_id: int) -> list[str]:
    """The user's position symbols on an exchange (Tier 2); [] when the database is unreachable."""
    if engine is None:
        return []

    def read() -> list[str]:
        import sqlalchemy as sa

        from streaming.db.schema import positions

        with engine.connect() as conn:
            q = sa.select(positions.c.symbol).where(positions.c.user_id == user_id,
                                                    positions.c.exchange_id == exchange_id)
            return sorted(set(conn.execute(q).scalars()))

    try:
        return await asyncio.to_thread(read)
    except Exception as exc:
        log.warning("positions of user %s from the database failed (%s)", user_id, _first_line(exc))
        return []
