"""What each command does: start, stop, status, reload-symbols. Returns (status, reason, result).

Commands for one exchange run one at a time (a lock per exchange); a stop cancels a start
that is still warming up rather than waiting minutes for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from streaming import keys
from streaming.adapters.base import AdapterError, ConnectionState
from streaming.control.commands import Command
from streaming.control.responses import ERROR, SUCCESS, ResponseStatus
from streaming.worker.config import WorkerConfig
from streaming.worker.exchanges import ExchangeNotFound, find_exchange, position_symbols
from streaming.worker.measure import ExchangeMeasure
from streaming.worker.publisher import StatusPublisher
from streaming.worker.session import ExchangeSession, StartFailed
from streaming.worker.universe import (
    NO_UNIVERSE,
    Pools,
    UniverseError,
    explicit_pools,
    parse_universe,
    select_pools,
)

if TYPE_CHECKING:
    from streaming.db.lazy_engine import Connectable

log = logging.getLogger("livermore.worker")

Outcome = tuple[ResponseStatus, str | None, dict[str, Any]]


class CommandHandlers:
    def __init__(self, config: WorkerConfig, redis: aioredis.Redis, engine: Connectable | None) -> None:
        self.config = config
        self.redis = redis
        self.engine = engine
        self.sessions: dict[str, ExchangeSession] = {}
        self.measures: dict[str, ExchangeMeasure] = {}  # exchange -> its counters, for the life of the worker
        self.starting: dict[str, asyncio.Task] = {}
        self.explicit: dict[str, tuple[str, ...]] = {}  # exchanges started with an explicit list
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.on_progress: Callable[[], None] | None = None  # a warm-up moved: the worker beats soon

    async def execute(self, cmd: Command) -> Outcome:
        try:
            if cmd.verb == "start":
                return await self.start_exchange(cmd.exchange or "", cmd.symbols)
            if cmd.verb == "stop":
                return await self.stop_command(cmd.exchange)
            if cmd.verb == "status":
                return SUCCESS, None, self.status(cmd.exchange)
            if cmd.verb == "reload-symbols":
                return await self.reload_exchange(cmd.exchange or "")
            return ERROR, f"unknown command {cmd.verb!r}", {}
        except Exception as exc:  # a bug in one command must not take the worker down
            log.exception("command %s %s failed", cmd.verb, cmd.exchange)
            return ERROR, f"internal error: {type(exc).__name__}: {str(exc)[:200]}", {}

    # -- symbols
    async def resolve_pools(self, row: dict[str, Any], symbols: tuple[str, ...] | None) -> Pools:
        name = row["name"]
        listed = symbols or self.config.explicit_symbols(name)
        if listed:
            self.explicit[name] = tuple(listed)
            return explicit_pools(listed, exchange=name, shard=self.config.shard)
        self.explicit.pop(name, None)
        raw = await self.redis.get(keys.universe(row["id"]))
        if not raw:
            raise StartFailed(f"no symbol universe for {name} (Redis key {keys.universe(row['id'])}): {NO_UNIVERSE}")
        try:
            universe = parse_universe(raw)
        except UniverseError as exc:
            raise StartFailed(str(exc)) from None
        if universe.rejected:
            log.warning("%s: %d malformed universe entries skipped, e.g. %s", name, len(universe.rejected),
                        universe.rejected[0])
        extra = await position_symbols(self.engine, self.config.user, row["id"]) if self.config.user else []
        return select_pools(universe, exchange=name, user=self.config.user, shard=self.config.shard,
                            extra_user_symbols=extra)

    # -- start
    async def start_exchange(self, name: str, symbols: tuple[str, ...] | None = None) -> Outcome:
        async with self.locks[name]:
            session = self.sessions.get(name)
            if session is not None:
                # started before (failed starts are dropped); a disconnected stream reconnects by itself
                return await self._start_running(session, symbols)
            task = asyncio.create_task(self._start(name, symbols))
            self.starting[name] = task
            try:
                return await task
            except asyncio.CancelledError:
                if not task.cancelled():
                    raise
                return ERROR, f"{name} was stopped before it connected", {}
            finally:
                self.starting.pop(name, None)

    async def _start_running(self, session: ExchangeSession, symbols: tuple[str, ...] | None) -> Outcome:
        """A start for a running exchange: with symbols, apply the difference (as reload-symbols
        does, no reconnect); without, leave it as it is and say how to change it."""
        name = session.name
        if symbols is None:
            return SUCCESS, None, {**session.describe(), "already_running": True, "note": (
                f"{name} was already running; pass --symbols to change its symbols, or run "
                f"`livermore reload-symbols {name}` to re-read the universe")}
        pools = await self.resolve_pools(session.row, symbols)
        if pools == session.pools:
            return SUCCESS, None, {**session.describe(), "already_running": True,
                                   "applied": {"added": [], "removed": [], "moved": [], "symbols": len(pools)}}
        applied = await session.reload(pools)
        log.info("%s: start with other symbols: +%d -%d symbols", name, len(applied["added"]), len(applied["removed"]))
        return SUCCESS, None, {**session.describe(), "already_running": True, "applied": applied}

    async def _start(self, name: str, symbols: tuple[str, ...] | None) -> Outcome:
        try:
            row = await find_exchange(name, self.engine, self.redis)
        except ExchangeNotFound as exc:
            return ERROR, str(exc), {}
        if not row.get("is_active", True):
            return ERROR, f"exchange {name!r} is inactive (exchanges.is_active = false); activate it first", {}
        try:
            pools = await self.resolve_pools(row, symbols)
        except StartFailed as exc:
            return ERROR, str(exc), {}
        publisher = StatusPublisher(self.redis, self.engine, row["id"], name, self.config.worker_id)
        measure = self.measures.get(name)
        if measure is None or measure.exchange_id != row["id"]:
            measure = self.measures[name] = ExchangeMeasure(name, row["id"])
        session = ExchangeSession(row, self.redis, publisher, warm_up=self.config.warm_up,
                                  connect_timeout_s=self.config.connect_timeout_s, on_progress=self.on_progress,
                                  measure=measure)
        self.sessions[name] = session
        try:
            result = await session.start(pools)
        except asyncio.CancelledError:
            await asyncio.shield(self._drop(name, "stopped before it connected"))
            raise
        except (StartFailed, AdapterError) as exc:
            await self._drop(name, str(exc), ConnectionState.ERROR)
            return ERROR, str(exc), {}
        if not pools:
            result["note"] = (f"no symbol of {name} falls in shard {self.config.shard_label}"
                              if self.config.shard else f"the universe of {name} is empty")
        return SUCCESS, None, result

    async def _drop(self, name: str, reason: str, final: ConnectionState | None = None) -> None:
        session = self.sessions.pop(name, None)
        if session is None:
            return
        await session.stop(reason, final or ConnectionState.IDLE)

    # -- stop
    async def stop_exchange(self, name: str, reason: str) -> None:
        task = self.starting.get(name)
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        async with self.locks[name]:
            await self._drop(name, reason)

    async def stop_command(self, name: str | None) -> Outcome:
        if name is None:
            stopped = sorted(set(self.sessions) | set(self.starting))
            await asyncio.gather(*(self.stop_exchange(n, "stopped by command") for n in stopped))
            return SUCCESS, None, {"stopped": stopped}
        if name not in self.sessions and name not in self.starting:
            try:
                await find_exchange(name, self.engine, self.redis)
            except ExchangeNotFound as exc:
                return ERROR, str(exc), {}
            return SUCCESS, None, {"exchange": name, "state": "idle", "was_running": False}
        await self.stop_exchange(name, "stopped by command")
        return SUCCESS, None, {"exchange": name, "state": "idle", "was_running": True}

    # -- status
    def status(self, name: str | None = None) -> dict[str, Any]:
        exchanges = {n: s.describe() for n, s in self.sessions.items() if name in (None, n)}
        if name is not None and name not in exchanges:
            exchanges[name] = {"exchange": name, "state": "idle", "symbols": 0}
        return {"worker_id": self.config.worker_id, "shard": self.config.shard_label, "user": self.config.user,
                "exchanges": exchanges}

    # -- reload-symbols
    async def reload_exchange(self, name: str, only_if_changed: bool = False) -> Outcome:
        async with self.locks[name]:
            session = self.sessions.get(name)
            if session is None:
                return ERROR, f"{name} is not running on worker {self.config.worker_id}; start it first", {}
            if name in self.explicit:
                pools = explicit_pools(self.explicit[name], exchange=name, shard=self.config.shard)
            else:
                try:
                    pools = await self.resolve_pools(session.row, None)
                except StartFailed as exc:
                    return ERROR, str(exc), {}
            if only_if_changed and pools == session.pools:
                return SUCCESS, None, {"added": [], "removed": [], "moved": [], "symbols": len(pools)}
            result = await session.reload(pools)
            if result["added"] or result["removed"]:
                log.info("%s: universe changed: +%d -%d symbols", name, len(result["added"]), len(result["removed"]))
            return SUCCESS, None, result
