"""The worker process: heartbeats, the command loop, universe checks, graceful shutdown.

Commands are read with XREAD from this worker's own cursor (persisted under its id), so every
worker sees every command (broadcast) and executes it once; `target` narrows who acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from typing import Any

import orjson
import redis.asyncio as aioredis
import sqlalchemy as sa

from streaming import keys
from streaming.control.commands import Command, CommandError, is_for, parse_command
from streaming.control.heartbeat import heartbeat_record
from streaming.control.responses import ACK, ERROR, SUCCESS, response
from streaming.ratelog import RateLimitedLog
from streaming.timestamps import utc_iso
from streaming.worker.config import WorkerConfig
from streaming.worker.handlers import CommandHandlers

log = logging.getLogger("livermore.worker")

HEARTBEAT_TTL_S = 15
CURSOR_TTL_S = 7 * 86_400


class Worker(CommandHandlers):
    def __init__(self, config: WorkerConfig, redis: aioredis.Redis, engine: sa.Engine | None) -> None:
        super().__init__(config, redis, engine)
        self.started_at = utc_iso()
        self.stopping = asyncio.Event()
        self.counts: Counter[str] = Counter()
        # keys: "redis" (any failing Redis call of the control loops), "skip" (unusable command entries)
        self._log = RateLimitedLog(log, 30.0)
        self._command_tasks: set[asyncio.Task] = set()

    # -- main
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop, sig.name)
        await self.write_heartbeat()
        log.info("worker %s up (shard %s, user %s); %s", self.config.worker_id, self.config.shard_label or "all",
                 self.config.user, f"autostart {', '.join(self.config.autostart)}" if self.config.autostart
                 else "idle until a start command")
        background = [asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
                      asyncio.create_task(self._command_loop(), name="commands"),
                      asyncio.create_task(self._universe_loop(), name="universe")]
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
        with contextlib.suppress(Exception):
            await self.redis.hdel(keys.WORKERS, self.config.worker_id)
            await self.redis.delete(keys.worker_heartbeat(self.config.worker_id))

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
        record = orjson.dumps(heartbeat_record(self.config.worker_id, self.started_at, states,
                                               self.config.shard_label, self.config.user))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.WORKERS, self.config.worker_id, record)
            pipe.set(keys.worker_heartbeat(self.config.worker_id), record, ex=HEARTBEAT_TTL_S)
            await pipe.execute()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await self.write_heartbeat()
                for session in list(self.sessions.values()):
                    await session.beat()
            except Exception as exc:  # Redis away for a moment: keep beating when it is back
                self._log.warning("redis", "heartbeat failed: %s", str(exc)[:200])

    # -- commands
    async def _initial_cursor(self) -> str:
        saved = await self.redis.get(keys.worker_cursor(self.config.worker_id))
        if saved:
            return saved
        # a new worker id answers commands sent shortly before it started (not lost, not ancient)
        return f"{int((time.time() - self.config.replay_s) * 1000)}-0"

    async def _command_loop(self) -> None:
        cursor = None
        while True:
            try:
                if cursor is None:
                    cursor = await self._initial_cursor()
                batch = await self.redis.xread({keys.COMMANDS_STREAM: cursor}, count=100, block=1000)
            except (aioredis.RedisError, OSError) as exc:
                self._log.warning("redis", "reading commands failed: %s", str(exc)[:200])
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in batch or []:
                for entry_id, fields in entries:
                    cursor = entry_id
                    await self.handle_entry(entry_id, fields)
            if batch:
                with contextlib.suppress(aioredis.RedisError, OSError):
                    await self.redis.set(keys.worker_cursor(self.config.worker_id), cursor, ex=CURSOR_TTL_S)

    async def respond(self, command_id: str, status: str, reason: str | None = None,
                      result: dict[str, Any] | None = None, verb: str | None = None) -> None:
        key = keys.command_responses(command_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(key, response(command_id, self.config.worker_id, status, reason, result, verb))
                pipe.expire(key, keys.RESPONSES_TTL_S)
                await pipe.execute()
        except (aioredis.RedisError, OSError) as exc:
            self._log.warning("redis", "could not answer command %s: %s", command_id, str(exc)[:200])

    async def handle_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        """One stream entry: answer errors at once, ack and execute valid commands meant for us."""
        self.counts["commands"] += 1
        try:
            cmd = parse_command(fields, now_ms=int(time.time() * 1000), entry_id=entry_id)
        except CommandError as exc:
            if exc.command_id is None:
                self.counts["unanswerable"] += 1
                self._log.warning("skip", "skipped command entry %s: %s", entry_id, exc.reason)
            elif is_for(exc.target, self.config.worker_id, self.config.shard_label):
                self.counts["rejected"] += 1
                await self.respond(exc.command_id, ERROR, exc.reason, verb=fields.get("command"))
            return
        if not is_for(cmd.target, self.config.worker_id, self.config.shard_label):
            return
        await self.respond(cmd.id, ACK, verb=cmd.verb)
        self._spawn(self._execute_and_answer(cmd))

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
