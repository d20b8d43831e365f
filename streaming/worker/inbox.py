"""One worker's reading of the command stream: its cursor, decoding, once-only execution, answers.

Every worker reads every entry of keys.COMMANDS_STREAM from its own cursor (saved under its id,
so a restart resumes there) and executes those meant for it. Entries are read as bytes and
decoded one by one: an entry that is not UTF-8, not JSON or not a command is answered with an
error when it has a usable id, else counted and skipped; either way the cursor moves past it
and is saved. A command id is taken once per worker (a SET NX key per id), so an entry added
twice runs once. Nothing an entry holds can end the loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.client import NEVER_DECODE  # redis-py's per-command "reply as bytes" (as DUMP uses)

from streaming import keys
from streaming.contracts.commands import Command, CommandError, Verb
from streaming.control.commands import is_for, parse_command
from streaming.control.responses import ERROR, ResponseStatus, response
from streaming.ratelog import RateLimitedLog

log = logging.getLogger("livermore.worker")

BATCH = 100
BLOCK_MS = 1000
MAX_BACKOFF_S = 5.0
_CURSOR_RE = re.compile(r"^\d{1,20}-\d{1,20}$")

Take = Callable[[Command], Awaitable[None]]


class CommandInbox:
    def __init__(self, redis: aioredis.Redis, worker_id: str, shard_label: str | None, replay_s: float,
                 counts: Counter[str], ratelog: RateLimitedLog,
                 clock_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.redis = redis
        self.worker_id = worker_id
        self.shard_label = shard_label
        self.replay_s = replay_s
        self.counts = counts
        self._log = ratelog
        self._clock_ms = clock_ms

    # -- the loop
    async def run(self, take: Take) -> None:
        """Read and handle commands until cancelled; `take` runs a valid command meant for us."""
        cursor: str | None = None
        backoff = 0.1
        while True:
            try:
                if cursor is None:
                    cursor = await self.initial_cursor()
                entries = await self.read(cursor)
                for entry_id, fields in entries:
                    cursor = entry_id  # past this entry whatever happens to it
                    await self.handle_entry(entry_id, fields, take)
                if entries:
                    await self.save_cursor(cursor)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as exc:
                self._log.warning("redis", "reading commands failed: %s", str(exc)[:200])
                await asyncio.sleep(1.0)
            except Exception as exc:  # a bug here must not silence the command plane
                self.counts["command_loop_errors"] += 1
                self._log.warning("command-loop", "command loop error (%s: %s); continuing in %.1fs",
                                  type(exc).__name__, str(exc)[:200], backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def initial_cursor(self) -> str:
        saved = await self.redis.execute_command("GET", keys.worker_cursor(self.worker_id), **{NEVER_DECODE: []})
        text = saved.decode("ascii", errors="replace") if isinstance(saved, bytes) else ""
        if _CURSOR_RE.match(text):
            return text
        if saved is not None:
            self._log.warning("cursor", "ignoring the unreadable saved command cursor %r", text[:60])
        # a new worker id answers commands sent shortly before it started (not lost, not ancient)
        return f"{max(0, self._clock_ms() - int(self.replay_s * 1000))}-0"

    async def read(self, cursor: str) -> list[tuple[str, Mapping[bytes, bytes]]]:
        """The next entries after `cursor`, fields undecoded (whatever bytes a sender wrote)."""
        reply: Any = await self.redis.execute_command(
            "XREAD", "COUNT", BATCH, "BLOCK", BLOCK_MS, "STREAMS", keys.COMMANDS_STREAM, cursor,
            **{NEVER_DECODE: []})
        streams = reply.items() if isinstance(reply, dict) else (reply or [])
        out = []
        for _stream, entries in streams:
            for entry_id, fields in entries:
                out.append((entry_id.decode("ascii") if isinstance(entry_id, bytes) else entry_id, fields or {}))
        return out

    async def save_cursor(self, cursor: str) -> None:
        try:
            await self.redis.set(keys.worker_cursor(self.worker_id), cursor, ex=keys.CURSOR_TTL_S)
        except (aioredis.RedisError, OSError) as exc:
            self._log.warning("redis", "saving the command cursor failed: %s", str(exc)[:200])

    # -- one entry
    async def handle_entry(self, entry_id: str, fields: Mapping[Any, Any], take: Take) -> None:
        """Answer errors at once; ack valid commands meant for us and hand them to `take`, once."""
        self.counts["commands"] += 1
        now_ms = self._clock_ms()
        try:
            cmd = parse_command(fields, now_ms=now_ms, entry_id=entry_id)
        except CommandError as exc:
            if exc.command_id is None:
                self.counts["unanswerable"] += 1
                self._log.warning("skip", "skipped command entry %s: %s", entry_id, exc.reason[:300])
            elif is_for(exc.target, self.worker_id, self.shard_label) and await self.first_time(exc.command_id):
                self.counts["rejected"] += 1
                await self.respond(exc.command_id, ERROR, exc.reason, verb=exc.verb)
            return
        if not is_for(cmd.target, self.worker_id, self.shard_label):
            return
        if not await self.first_time(cmd.id, cmd.expires_at_ms - now_ms):
            self.counts["duplicates"] += 1
            self._log.warning("duplicate", "command %s (entry %s) was taken before; not run again", cmd.id, entry_id)
            return
        await self.respond(cmd.id, "ack", verb=cmd.verb)
        await take(cmd)

    async def first_time(self, command_id: str, valid_for_ms: int = 0) -> bool:
        """Mark the id taken by this worker; False when it was already. Kept while the command is
        valid and its answers are kept; a Redis failure counts as the first time (run, not lose)."""
        ttl_s = max(0, valid_for_ms) // 1000 + keys.RESPONSES_TTL_S
        try:
            return bool(await self.redis.set(keys.worker_command_taken(self.worker_id, command_id), 1,
                                             nx=True, ex=min(ttl_s, keys.CURSOR_TTL_S)))
        except (aioredis.RedisError, OSError) as exc:
            self._log.warning("redis", "could not mark command %s taken: %s", command_id, str(exc)[:200])
            return True

    async def respond(self, command_id: str, status: ResponseStatus, reason: str | None = None,
                      result: dict[str, Any] | None = None, verb: Verb | None = None) -> None:
        key = keys.command_responses(command_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(key, response(command_id, self.worker_id, status, reason, result, verb))
                pipe.expire(key, keys.RESPONSES_TTL_S)
                await pipe.execute()
        except (aioredis.RedisError, OSError) as exc:
            self._log.warning("redis", "could not answer command %s: %s", command_id, str(exc)[:200])

