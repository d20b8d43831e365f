"""Exchange name -> id: from the HASH Dagster's `exchanges` asset keeps in Redis, or from the database."""

from __future__ import annotations

from typing import Any

from streaming import keys
from streaming.redis_text import as_str


def from_redis(redis_client: Any) -> dict[str, int]:
    """keys.EXCHANGES_BY_NAME as name -> id; entries whose id is not an integer are skipped."""
    out: dict[str, int] = {}
    for name, value in redis_client.hgetall(keys.EXCHANGES_BY_NAME).items():
        try:
            out[as_str(name)] = int(value)
        except ValueError:
            continue
    return out


def from_database(engine: Any) -> dict[str, int]:
    """name -> id of every exchanges row; {} when the database is unreachable or not migrated."""
    from streaming.db.queries import list_exchanges

    try:
        with engine.connect() as conn:
            return {row["name"]: int(row["id"]) for row in list_exchanges(conn)}
    except Exception:  # an unreachable database only means: no names to resolve
        return {}
