"""Connection state of one exchange, made visible: status HASH, lifecycle events, database row.

Each worker writes its own HASH keys.exchange_worker_status(id, worker_id) and then recomputes
the shared keys.exchange_status(id) from the statuses of all live workers (streaming.control.merge),
under WATCH so two workers writing at once cannot leave a stale merge behind.

Lifecycle events go to keys.lifecycle_channel(id) (pub/sub, for whoever listens now) and to
keys.LIFECYCLE_STREAM (durable, bounded). The database copy is best effort: an unreachable
database is logged (rate-limited) and never stops the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import redis.asyncio as aioredis
from redis.client import NEVER_DECODE
from redis.exceptions import WatchError

from streaming import keys
from streaming.adapters.base import ConnectionState
from streaming.contracts.workers import ExchangeStatus, LifecycleEvent, LifecycleEventName, WarmUpProgress
from streaming.control.heartbeat import DEFAULT_MAX_AGE_S, fresh_heartbeats
from streaming.control.merge import live_statuses, merge_statuses
from streaming.ratelog import RateLimitedLog
from streaming.redis_text import str_hash
from streaming.timestamps import parse_utc_iso, utc_iso

if TYPE_CHECKING:
    from streaming.db.lazy_engine import Connectable

log = logging.getLogger(__name__)

EVENTS: dict[ConnectionState, LifecycleEventName] = {
    ConnectionState.CONNECTING: "exchange:connecting",
    ConnectionState.CONNECTED: "exchange:connected",
    ConnectionState.DISCONNECTED: "exchange:disconnected",
    ConnectionState.ERROR: "exchange:disconnected",
    ConnectionState.IDLE: "exchange:disconnected",
}


# one for all publishers: an unreachable database fails every exchange's status write alike
_db_log = RateLimitedLog(log, 60.0)

MERGE_ATTEMPTS = 5


async def ensure_status(redis: aioredis.Redis, exchange_id: int, worker_id: str) -> None:
    """Make keys.exchange_status(id) exist: `idle` unless a worker already wrote a state (HSETNX
    field by field, so a state written meanwhile is never overwritten)."""
    key = keys.exchange_status(exchange_id)
    async with redis.pipeline(transaction=False) as pipe:
        for field, value in ExchangeStatus(connection_state=ConnectionState.IDLE.value, updated_at=utc_iso(),
                                           worker_id=worker_id).fields().items():
            pipe.hsetnx(key, field, value)
        await pipe.execute()


class StatusPublisher:
    def __init__(self, redis: aioredis.Redis, engine: Connectable | None, exchange_id: int, exchange: str,
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
        self.symbols: int | None = None  # how many symbols the session serves, once known
        self.stale_count = 0  # stale live streams, as last written
        self.history_missing = 0  # streams without their history, as last written
        self.merged: dict[str, str] = {}  # the exchange's merged status as last written
        self._fresh = True  # a new session: what an earlier one of this worker wrote is not ours

    async def set_state(self, state: ConnectionState, reason: str | None = None,
                        extra: Mapping[str, Any] | None = None, *, final: bool = False,
                        resumed: bool = False) -> None:
        """Publish a new state. `extra` may carry {"symbols": n}, the count the session serves;
        events carry the last count known (null before the first).

        A new connection (CONNECTED) clears last_error; `resumed` (frames flow again after a
        loop failed on an open connection) keeps it and connected_at. A `final` state (the
        session is gone: stopped, or its start failed) clears connected_at; IDLE also clears
        last_error: nothing is wrong with an exchange nobody asked for."""
        now = utc_iso()
        if state == ConnectionState.CONNECTED:
            if not resumed or not self.connected_at:
                self.connected_at = now
            if not resumed:
                self.last_error = None
            self.last_heartbeat = now
        elif state in (ConnectionState.DISCONNECTED, ConnectionState.ERROR) and reason:
            self.last_error = reason[:500]
        if final or state == ConnectionState.IDLE:
            self.connected_at = None
        if state == ConnectionState.IDLE:
            self.last_error = None
        if extra and isinstance(extra.get("symbols"), int):
            self.symbols = extra["symbols"]
        self.state = state
        own = ExchangeStatus(connection_state=state.value, updated_at=now, worker_id=self.worker_id,
                             connected_at=self.connected_at or "", last_heartbeat=self.last_heartbeat or "",
                             last_error=self.last_error or "", stale_streams="0" if final else None,
                             history_missing="0" if final and self.history_missing else None)
        if final:
            self.stale_count = 0
            self.history_missing = 0
        event = LifecycleEvent(EVENTS[state], self.exchange_id, self.exchange, self.worker_id, state.value, reason,
                               now, self.symbols)
        payload = msgspec.json.encode(event)
        await self._write_own(own)
        await self._write_merged()
        await self._publish(payload)
        log.info("%s: %s%s", self.exchange, event.event, f" ({reason})" if reason else "")
        await self._write_db()

    async def stream_health(self, symbol: str, timeframe: str, stale: bool, detail: str, stale_count: int) -> None:
        """One live stream went stale (or recovered): the count into the statuses, and a
        `stream:stale` / `stream:recovered` lifecycle event."""
        now = utc_iso()
        await self.set_stale_count(stale_count)
        event = LifecycleEvent("stream:stale" if stale else "stream:recovered", self.exchange_id, self.exchange,
                               self.worker_id, self.state.value, detail, now, self.symbols, symbol, timeframe)
        await self._publish(msgspec.json.encode(event))
        log.info("%s: %s %s %s (%s)", self.exchange, event.event, symbol, timeframe, detail)

    async def set_stale_count(self, count: int) -> None:
        """How many of the session's live streams are stale now, into the statuses."""
        self.stale_count = count
        await self._write_own(ExchangeStatus(stale_streams=str(count), updated_at=utc_iso()))
        await self._write_merged()

    async def set_history_missing(self, count: int) -> None:
        """How many of the session's streams still miss the history their warm-up failed to fetch."""
        self.history_missing = count
        await self._write_own(ExchangeStatus(history_missing=str(count), updated_at=utc_iso()))
        await self._write_merged()

    async def _publish(self, payload: bytes) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.publish(keys.lifecycle_channel(self.exchange_id), payload)
            pipe.xadd(keys.LIFECYCLE_STREAM, {"json": payload}, maxlen=keys.LIFECYCLE_MAXLEN, approximate=True)
            await pipe.execute()

    async def set_progress(self, progress: WarmUpProgress) -> None:
        """The warm-up's progress into our own status and the merged one."""
        await self._write_own(ExchangeStatus(
            updated_at=utc_iso(), warmup_done=str(progress.streams_done), warmup_total=str(progress.streams_total),
            warmup_candles="" if progress.candles is None else str(progress.candles),
            warmup_requests="" if progress.requests is None else str(progress.requests),
            warmup_started_at=progress.started_at,
            warmup_eta_s="" if progress.eta_s is None else f"{progress.eta_s:.0f}"))
        await self._write_merged()

    async def heartbeat(self, ts: float) -> None:
        """The time of the last frame from the exchange: how fresh the connection is."""
        self.last_heartbeat = utc_iso(ts)
        await self._write_own(ExchangeStatus(last_heartbeat=self.last_heartbeat, updated_at=utc_iso()))
        # also drops workers whose heartbeat went stale since the last write
        await self._write_merged()

    async def refresh(self) -> None:
        """Recompute the merged status without news of our own: drops workers that died meanwhile."""
        await self._write_merged()

    async def forget(self) -> None:
        """Remove this worker's own status (clean shutdown); the merged hash stays as last written."""
        await self.redis.delete(self.own_key)

    @property
    def own_key(self) -> str:
        return keys.exchange_worker_status(self.exchange_id, self.worker_id)

    async def _write_own(self, status: ExchangeStatus) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            if self._fresh:
                pipe.delete(self.own_key)
                self._fresh = False
            pipe.hset(self.own_key, mapping=status.fields())
            pipe.expire(self.own_key, keys.WORKER_STATUS_TTL_S)
            await pipe.execute()

    async def _read_live_statuses(self, reader: Any) -> dict[str, Mapping[str, str]]:
        async def hgetall(key: str) -> Any:  # bytes: whatever another process wrote cannot break the merge
            return await reader.execute_command("HGETALL", key, **{NEVER_DECODE: []})

        beats, _ = fresh_heartbeats(await hgetall(keys.WORKERS), datetime.now(UTC), DEFAULT_MAX_AGE_S)
        others = [str(b.get("worker_id")) for b in beats if b.get("worker_id") != self.worker_id]
        statuses = {self.worker_id: str_hash(await hgetall(self.own_key))}
        for worker_id in others:
            status = str_hash(await hgetall(keys.exchange_worker_status(self.exchange_id, worker_id)))
            if status:
                statuses[worker_id] = status
        return dict(live_statuses(statuses, beats, own_worker_id=self.worker_id))

    async def _write_merged(self) -> None:
        """Recompute keys.exchange_status(id) from every live worker's own status.

        WATCH on the merged key: if another worker rewrote it between our read and our write, our
        view may miss its latest state, so read again (its write came after its own status did).
        """
        target = keys.exchange_status(self.exchange_id)
        merged: dict[str, str] = {}
        for attempt in range(MERGE_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                try:
                    if attempt < MERGE_ATTEMPTS - 1:
                        await pipe.watch(target)
                    statuses = await self._read_live_statuses(pipe if attempt < MERGE_ATTEMPTS - 1 else self.redis)
                    merged = {**merge_statuses(statuses, utc_iso()), "worker_id": self.worker_id}
                    pipe.multi()
                    pipe.delete(target)  # the merge is the whole truth: no field outlives its source
                    pipe.hset(target, mapping=ExchangeStatus(**merged).fields())
                    await pipe.execute()
                    break
                except WatchError:
                    continue
        self.merged = merged

    async def _write_db(self) -> None:
        engine = self.engine
        if engine is None:
            return
        merged = self.merged

        def write() -> None:
            from streaming.db.queries import set_connection_status  # SQLAlchemy: only once an exchange runs

            with engine.begin() as conn:
                set_connection_status(
                    conn, self.exchange_id, merged.get("connection_state") or self.state.value,
                    connected_at=parse_utc_iso(merged.get("connected_at")),
                    last_heartbeat=parse_utc_iso(merged.get("last_heartbeat")),
                    last_error=merged.get("last_error") or None)

        try:
            await asyncio.to_thread(write)
        except Exception as exc:  # the database is optional for the live side
            _db_log.warning("db", "could not write the connection status of %s to the database: %s",
                            self.exchange, str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
