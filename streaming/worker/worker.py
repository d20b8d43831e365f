"""The worker process: heartbeats, the command loop, universe checks, graceful shutdown.

Commands are read from this worker's own cursor (streaming.worker.inbox), so every worker sees
every command (broadcast) and executes it once; `target` narrows who acts. Each background loop
runs supervised: if it fails it is logged, counted and restarted after a short backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import msgspec
import redis.asyncio as aioredis

from streaming import keys
from streaming.contracts.commands import Verb
from streaming.control.commands import Command
from streaming.control.heartbeat import heartbeat
from streaming.control.responses import SUCCESS, ResponseStatus
from streaming.ratelog import RateLimitedLog
from streaming.timestamps import utc_iso
from streaming.worker.config import WorkerConfig
from streaming.worker.exchanges import announced_rows
from streaming.worker.handlers import CommandHandlers
from streaming.worker.inbox import CommandInbox
from streaming.worker.publisher import ensure_status
from streaming.worker.stats_writer import StatsWriter

if TYPE_CHECKING:
    from streaming.db.lazy_engine import Connectable

log = logging.getLogger("livermore.worker")

MAX_RESTART_DELAY_S = 5.0
PROGRESS_BEAT_S = 0.5  # while a warm-up runs, heartbeats (which carry its progress) this often at most


class Worker(CommandHandlers):
    def __init__(self, config: WorkerConfig, redis: aioredis.Redis, engine: Connectable | None) -> None:
        super().__init__(config, redis, engine)
        self.started_at = utc_iso()
        self.stopping = asyncio.Event()
        self.counts: Counter[str] = Counter()
        # keys: "redis" (any failing Redis call of the control loops), "skip" (unusable command entries)
        self._log = RateLimitedLog(log, 30.0)
        self._command_tasks: set[asyncio.Task] = set()
        self._beat_soon = asyncio.Event()
        self.on_progress = self._beat_soon.set
        self.inbox = CommandInbox(redis, config.worker_id, config.shard_label, config.replay_s, self.counts,
                                  self._log)
        self.stats = StatsWriter(redis, config.worker_id, self.started_at, self.measures, lambda: self.sessions)
        self._stats_task: asyncio.Task | None = None
        self._metrics: Any = None  # the /metrics server while it runs

    # -- main
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        if self.config.metrics_port:  # before anything else: a busy port fails the start at once
            from streaming.worker.metrics import MetricsServer

            self._metrics = await MetricsServer(self.config.metrics_port, self.measures).start()
        await self._announce_exchanges()  # before the first heartbeat: a live worker's exchanges are listed
        await self.write_heartbeat()
        log.info("worker %s up (shard %s, user %s); %s", self.config.worker_id, self.config.shard_label or "all",
                 self.config.user, f"autostart {', '.join(self.config.autostart)}" if self.config.autostart
                 else "idle until a start command")
        background = [asyncio.create_task(self._supervised("heartbeat", self._heartbeat_loop), name="heartbeat"),
                      asyncio.create_task(self._supervised("commands", self._command_loop), name="commands"),
                      asyncio.create_task(self._supervised("universe", self._universe_loop), name="universe")]
        self._stats_task = asyncio.create_task(self._supervised("stats", self._stats_loop), name="stats")
        for name in self.config.autostart:
            self._spawn(self._autostart(name))
        await self.stopping.wait()
        await self.shutdown()
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(BaseException):
                await task
        log.info("worker %s stopped", self.config.worker_id)
        return 0

    def request_stop(self, why: str = "requested") -> None:
        if not self.stopping.is_set():
            log.info("stopping (%s)", why)
            self.stopping.set()

    async def _announce_exchanges(self) -> None:
        """Every exchange this worker knows gets its status hash (idle until someone starts it)."""
        try:
            for row in await announced_rows(self.engine, self.redis):
                if isinstance(row.get("id"), int):
                    await ensure_status(self.redis, row["id"], self.config.worker_id)
        except Exception as exc:  # Redis or the database away for a moment: a start writes it anyway
            self._log.warning("redis", "could not write the exchanges' idle status: %s", str(exc)[:200])

    async def shutdown(self) -> None:
        for task in list(self.starting.values()):
            task.cancel()
        publishers = [s.publisher for s in self.sessions.values()]
        await asyncio.gather(*(self.stop_exchange(name, "worker shutdown") for name in list(self.sessions)),
                             return_exceptions=True)
        for publisher in publishers:  # the merged status already counts us as idle
            with contextlib.suppress(Exception):
                await publisher.forget()
        for task in list(self._command_tasks):
            task.cancel()
        if self._stats_task is not None:  # stopped before its fields go, or it would write them again
            self._stats_task.cancel()
            with contextlib.suppress(BaseException):
                await self._stats_task
        with contextlib.suppress(Exception):
            await self.stats.forget()
        if self._metrics is not None:
            with contextlib.suppress(Exception):
                await self._metrics.stop()
        with contextlib.suppress(Exception):
            await cast("Awaitable[int]", self.redis.hdel(keys.WORKERS, self.config.worker_id))
            await self.redis.delete(keys.worker_heartbeat(self.config.worker_id))

    async def _supervised(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop` for the life of the worker: an exception is logged, counted and the loop restarted."""
        delay = 0.1
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counts[f"{name}_restarts"] += 1
                log.exception("the %s loop failed; restarting it in %.1fs", name, delay)
            else:
                log.error("the %s loop returned; restarting it in %.1fs", name, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RESTART_DELAY_S)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._command_tasks.add(task)
        task.add_done_callback(self._command_tasks.discard)

    async def _autostart(self, name: str) -> None:
        outcome = await self.execute(Command(id=f"autostart-{name}", verb="start", exchange=name))
        if outcome[0] != SUCCESS:
            log.error("autostart %s failed: %s", name, outcome[1])

    # -- heartbeats
    async def write_heartbeat(self) -> None:
        states = {name: s.state for name, s in self.sessions.items()}
        warm_up = {name: p for name, s in self.sessions.items() if (p := s.progress()) is not None}
        record = msgspec.json.encode(heartbeat(self.config.worker_id, self.started_at, states,
                                               self.config.shard_label, self.config.user, warm_up=warm_up))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.WORKERS, mapping={self.config.worker_id: record})
            pipe.set(keys.worker_heartbeat(self.config.worker_id), record, ex=keys.HEARTBEAT_TTL_S)
            await pipe.execute()

    async def _heartbeat_loop(self) -> None:
        """A heartbeat every heartbeat_s (and the sessions' beats); in between, one as soon as a
        warm-up moves (at most every PROGRESS_BEAT_S), so its progress is seen as it happens."""
        loop = asyncio.get_running_loop()
        next_full = loop.time() + self.config.heartbeat_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_soon.wait(), max(0.0, next_full - loop.time()))
            self._beat_soon.clear()
            full = loop.time() >= next_full
            try:
                await self.write_heartbeat()
                if full:
                    next_full = loop.time() + self.config.heartbeat_s
                    for session in list(self.sessions.values()):
                        await session.beat()
            except Exception as exc:  # Redis away for a moment: keep beating when it is back
                self._log.warning("redis", "heartbeat failed: %s", str(exc)[:200])
            if not full:
                await asyncio.sleep(PROGRESS_BEAT_S)

    async def _stats_loop(self) -> None:
        while True:
            try:
                await self.stats.write()
            except Exception as exc:  # Redis away for a moment: the next snapshot says it all again
                self._log.warning("redis", "stats snapshot failed: %s", str(exc)[:200])
            await asyncio.sleep(self.config.stats_s)

    # -- commands
    async def _command_loop(self) -> None:
        await self.inbox.run(self._take)

    async def _take(self, cmd: Command) -> None:
        self._spawn(self._execute_and_answer(cmd))

    async def respond(self, command_id: str, status: ResponseStatus, reason: str | None = None,
                      result: dict[str, Any] | None = None, verb: Verb | None = None) -> None:
        await self.inbox.respond(command_id, status, reason, result, verb)

    async def _execute_and_answer(self, cmd: Command) -> None:
        status, reason, result = await self.execute(cmd)
        await self.respond(cmd.id, status, reason, result, cmd.verb)
        with contextlib.suppress(Exception):
            await self.write_heartbeat()  # callers reading `livermore workers` see the change at once

    async def _universe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.universe_check_s)
            for name in list(self.sessions):
                try:
                    await self.reload_exchange(name, only_if_changed=True)
                except Exception as exc:
                    self._log.warning("redis", "universe check of %s failed: %s", name, str(exc)[:200])
