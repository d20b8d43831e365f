"""Worker heartbeats: HASH keys.WORKERS field worker_id -> JSON, refreshed every ~2 s.

A heartbeat is fresh while its last_heartbeat is younger than `max_age_s`; stale entries
(a worker killed with SIGKILL) are ignored by readers and pruned by live_workers.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from streaming import keys
from streaming.redis_text import str_hash
from streaming.timestamps import utc_iso

HEARTBEAT_INTERVAL_S = 2.0
DEFAULT_MAX_AGE_S = 15.0
PRUNE_AFTER_S = 3600.0


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat_record(worker_id: str, started_at: str, exchanges: dict[str, str], shard: str | None,
                     user: int | None, now: datetime | None = None) -> dict[str, Any]:
    return {
        "worker_id": worker_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started_at,
        "last_heartbeat": utc_iso(now),
        "exchanges": exchanges,
        "shard": shard,
        "user": user,
    }


def age_s(record: dict[str, Any], now: datetime) -> float | None:
    try:
        beat = datetime.fromisoformat(record["last_heartbeat"])
    except (KeyError, TypeError, ValueError):
        return None
    if beat.tzinfo is None:
        return None
    return (now - beat).total_seconds()


def fresh_heartbeats(raw: dict[str, str], now: datetime, max_age_s: float) -> tuple[list[dict[str, Any]], list[str]]:
    """(fresh records sorted by worker id with `age_s`, ids of entries to prune) out of HGETALL."""
    fresh, prune = [], []
    for worker_id, text in raw.items():
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            prune.append(worker_id)
            continue
        age = age_s(record, now) if isinstance(record, dict) else None
        if age is None or age > PRUNE_AFTER_S:
            prune.append(worker_id)
        elif age <= max_age_s:
            fresh.append({**record, "age_s": round(age, 3)})
    fresh.sort(key=lambda r: str(r.get("worker_id")))
    return fresh, prune


def live_workers(redis_client: redis.Redis, max_age_s: float = DEFAULT_MAX_AGE_S) -> list[dict[str, Any]]:
    """Workers with a fresh heartbeat: {worker_id, host, pid, started_at, last_heartbeat, exchanges, shard, age_s}."""
    raw = str_hash(redis_client.hgetall(keys.WORKERS))
    fresh, prune = fresh_heartbeats(raw, datetime.now(UTC), max_age_s)
    if prune:
        redis_client.hdel(keys.WORKERS, *prune)
    return fresh
