"""Exchange connection status: the live copy in Redis and its sync into the database.

The worker keeps HASH keys.exchange_status(id) current and is the one writer of the table
exchange_connection_status (streaming.worker.publisher); `live_status` is what `livermore status`
shows about the live side.
"""

from __future__ import annotations

from typing import Any, cast

import redis

from streaming import exchange_ids, keys
from streaming.control.heartbeat import live_workers
from streaming.redis_text import str_hash


def read_status(redis_client: redis.Redis, exchange_id: int) -> dict[str, str]:
    return str_hash(cast("dict[Any, Any]", redis_client.hgetall(keys.exchange_status(exchange_id))))


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
