"""Connection state of one exchange, made visible: status HASH, lifecycle events, database row.

Lifecycle events go to keys.lifecycle_channel(id) (pub/sub, for whoever listens now) and to
keys.LIFECYCLE_STREAM (durable, bounded). The database copy is best effort: an unreachable
database is logged (rate-limited) and never stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis
import sqlalchemy as sa

from streaming import keys
from streaming.adapters.base import ConnectionState
from streaming.db.queries import set_connection_status
from streaming.ratelog import RateLimitedLog
from streaming.timestamps import utc_iso

log = logging.getLogger(__name__)

EVENTS = {
    ConnectionState.CONNECTING: "exchange:connecting",
    ConnectionState.CONNECTED: "exchange:connected",
    ConnectionState.DISCONNECTED: "exchange:disconnected",
    ConnectionState.ERROR: "exchange:disconnected",
    ConnectionState.IDLE: "exchange:disconnected",
}


def lifecycle_event(event: str, exchange_id: int, exchange: str, worker_id: str, state: str,
                    reason: str | None, at: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"event": event, "exchange_id": exchange_id, "exchange": exchange, "worker_id": worker_id,
            "state": state, "reason": reason, "at": at, **(extra or {})}


# one for all publishers: an unreachable database fails every exchange's status write alike
_db_log = RateLimitedLog(log, 60.0)


class StatusPublisher:
    def __init__(self, redis: aioredis.Redis, engine: sa.Engine | None, exchange_id: int, exchange: str,
                 worker_id: str) -> None:
        self.redis = redis
        self.engine = engine
        self.exchange_id = exchange_id
        self.exchange = exchange
        self.worker_id = worker_id
        self.state = ConnectionState.IDLE
        self.connected_at: str | None = None
        self.last_heartbeat: str | None = None
        self.last_error: str | None = None

    async def set_state(self, state: ConnectionState, reason: str | None = None,
                        extra: dict[str, Any] | None = None) -> None:
        now = utc_iso()
        if state == ConnectionState.CONNECTED:
            self.connected_at = now
            self.last_heartbeat = now
        elif state in (ConnectionState.DISCONNECTED, ConnectionState.ERROR) and reason:
            self.last_error = reason[:500]
        self.state = state
        mapping = {"connection_state": state.value, "updated_at": now, "worker_id": self.worker_id,
                   "connected_at": self.connected_at or "", "last_heartbeat": self.last_heartbeat or "",
                   "last_error": self.last_error or ""}
        event = lifecycle_event(EVENTS[state], self.exchange_id, self.exchange, self.worker_id, state.value,
                                reason, now, extra)
        payload = orjson.dumps(event)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.exchange_status(self.exchange_id), mapping=mapping)
            pipe.publish(keys.lifecycle_channel(self.exchange_id), payload)
            pipe.xadd(keys.LIFECYCLE_STREAM, {"json": payload}, maxlen=keys.LIFECYCLE_MAXLEN, approximate=True)
            await pipe.execute()
        log.info("%s: %s%s", self.exchange, event["event"], f" ({reason})" if reason else "")
        await self._write_db()

    async def heartbeat(self, ts: float) -> None:
        """The time of the last frame from the exchange (EXC-04)."""
        self.last_heartbeat = utc_iso(ts)
        await self.redis.hset(keys.exchange_status(self.exchange_id),
                              mapping={"last_heartbeat": self.last_heartbeat, "updated_at": utc_iso()})

    async def _write_db(self) -> None:
        if self.engine is None:
            return

        def write() -> None:
            with self.engine.begin() as conn:
                set_connection_status(
                    conn, self.exchange_id, self.state.value,
                    connected_at=_dt(self.connected_at), last_heartbeat=_dt(self.last_heartbeat),
                    last_error=self.last_error)

        try:
            await asyncio.to_thread(write)
        except Exception as exc:  # the database is optional for the live side
            _db_log.warning("db", "could not write the connection status of %s to the database: %s",
                            self.exchange, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
