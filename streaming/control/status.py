"""Exchange connection status: the live copy in Redis and its sync into the database.

The worker keeps HASH keys.exchange_status(id) current; `sync_connection_status` copies it into
exchange_connection_status (the Dagster sensor calls it); `live_status` is what
`livermore status` shows about the live side.
"""

from __future__ import annotations

from typing import Any

import redis
import sqlalchemy as sa

from streaming import exchange_ids, keys
from streaming.contracts.workers import status_from_hash
from streaming.control.heartbeat import live_workers
from streaming.db.queries import list_exchanges, set_connection_status
from streaming.db.schema import CONNECTION_STATES
from streaming.redis_text import str_hash
from streaming.timestamps import parse_utc_iso


def read_status(redis_client: redis.Redis, exchange_id: int) -> dict[str, str]:
    return str_hash(redis_client.hgetall(keys.exchange_status(exchange_id)))


def sync_connection_status(redis_client: redis.Redis, engine: sa.Engine) -> int:
    """Copy every exchange's Redis status hash into exchange_connection_status; return rows written.

    Exchanges with no hash (never started) are left as they are; an unknown state string is
    written as 'error' rather than violating the CHECK constraint.
    """
    written = 0
    with engine.begin() as conn:
        for row in list_exchanges(conn):
            status = status_from_hash(redis_client.hgetall(keys.exchange_status(row["id"])))
            state = status.connection_state
            if not state:
                continue
            set_connection_status(
                conn, row["id"], state if state in CONNECTION_STATES else "error",
                connected_at=parse_utc_iso(status.connected_at),
                last_heartbeat=parse_utc_iso(status.last_heartbeat),
                last_error=status.last_error or None,
                updated_at=parse_utc_iso(status.updated_at),
            )
            written += 1
    return written


def live_status(redis_client: redis.Redis, max_age_s: float = 15.0) -> dict[str, Any]:
    """{"workers": [heartbeat...], "exchanges": {name: {id, connection_state, ..., workers: [ids]}}}.

    Exchange names come from keys.EXCHANGES_BY_NAME (written by Dagster) plus whatever the live
    workers report, so it answers with or without the database.
    """
    workers = live_workers(redis_client, max_age_s=max_age_s)
    ids = exchange_ids.from_redis(redis_client)
    exchanges: dict[str, dict[str, Any]] = {}
    for name, exchange_id in sorted(ids.items(), key=lambda kv: kv[1]):
        exchanges[name] = {"id": exchange_id, **read_status(redis_client, exchange_id), "workers": []}
    for w in workers:
        for name, state in (w.get("exchanges") or {}).items():
            entry = exchanges.setdefault(name, {"id": None, "workers": []})
            entry["workers"].append({"worker_id": w["worker_id"], "state": state})
    return {"workers": workers, "exchanges": exchanges}
