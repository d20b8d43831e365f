"""Worker heartbeats: HASH keys.WORKERS field worker_id -> JSON, refreshed every ~2 s.

A heartbeat is fresh while its last_heartbeat is younger than `max_age_s`; stale entries
(a worker killed with SIGKILL) are ignored by readers and pruned by live_workers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import msgspec
import redis

from streaming import keys
from streaming.contracts.workers import Heartbeat, WarmUpProgress
from streaming.timestamps import parse_utc_iso, utc_iso

HEARTBEAT_INTERVAL_S = 2.0
DEFAULT_MAX_AGE_S = 15.0
PRUNE_AFTER_S = 3600.0

_decode = msgspec.json.Decoder(Heartbeat).decode


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def heartbeat(worker_id: str, started_at: str, exchanges: dict[str, str], shard: str | None,
              user: int | None, now: datetime | None = None,
              warm_up: dict[str, WarmUpProgress] | None = None) -> Heartbeat:
    return Heartbeat(worker_id=worker_id, host=socket.gethostname(), pid=os.getpid(), started_at=started_at,
                     last_heartbeat=utc_iso(now), exchanges=exchanges, shard=shard, user=user,
                     warm_up=warm_up or {})


def heartbeat_record(worker_id: str, started_at: str, exchanges: dict[str, str], shard: str | None,
                     user: int | None, now: datetime | None = None) -> dict[str, Any]:
    """The heartbeat as the JSON object stored in Redis."""
    return msgspec.to_builtins(heartbeat(worker_id, started_at, exchanges, shard, user, now))


def age_s(record: Mapping[str, Any], now: datetime) -> float | None:
    beat = parse_utc_iso(record.get("last_heartbeat"))
    return None if beat is None else (now - beat).total_seconds()


def fresh_heartbeats(raw: Mapping[Any, str | bytes], now: datetime,
                     max_age_s: float) -> tuple[list[dict[str, Any]], list[Any]]:
    """(fresh records sorted by worker id with `age_s`, fields to prune) out of HGETALL keys.WORKERS.

    An entry that is not a heartbeat, or is older than PRUNE_AFTER_S, is pruned.
    """
    fresh, prune = [], []
    for field, text in raw.items():
        try:
            record: dict[str, Any] = msgspec.to_builtins(_decode(text))
        except (msgspec.DecodeError, RecursionError):
            prune.append(field)
            continue
        age = age_s(record, now)
        if age is None or age > PRUNE_AFTER_S:
            prune.append(field)
        elif age <= max_age_s:
            fresh.append({**record, "age_s": round(age, 3)})
    fresh.sort(key=lambda r: str(r.get("worker_id")))
    return fresh, prune


def live_workers(redis_client: redis.Redis, max_age_s: float = DEFAULT_MAX_AGE_S) -> list[dict[str, Any]]:
    """Workers with a fresh heartbeat: {worker_id, host, pid, started_at, last_heartbeat, exchanges, shard, user,
    age_s}."""
    records = cast("dict[Any, Any]", redis_client.hgetall(keys.WORKERS))
    fresh, prune = fresh_heartbeats(records, datetime.now(UTC), max_age_s)
    if prune:
        redis_client.hdel(keys.WORKERS, *prune)
    return fresh
