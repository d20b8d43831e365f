"""The worker's command inbox in-process against a real Redis: a failing handler or an unreadable
saved cursor does not stop it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import redis.asyncio as aioredis

from streaming import keys
from streaming.control.commands import Command, make_command
from streaming.ratelog import RateLimitedLog
from streaming.worker.inbox import CommandInbox


def inbox(r: aioredis.Redis, counts: Counter[str]) -> CommandInbox:
    return CommandInbox(r, "w1", None, replay_s=600, counts=counts,
                        ratelog=RateLimitedLog(logging.getLogger("test.inbox"), 30.0))


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_failing_handler_is_counted_and_the_loop_goes_on(redis_url):
    async def go() -> None:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        counts: Counter[str] = Counter()
        taken: list[str] = []

        async def take(cmd: Command) -> None:
            taken.append(cmd.id)
            if cmd.id == "boom":
                raise RuntimeError("a bug in a handler")

        now = int(time.time() * 1000)
        for command_id in ("boom", "after"):
            last = await r.xadd(keys.COMMANDS_STREAM,
                                make_command("status", now_ms=now, command_id=command_id).to_fields())
        task = asyncio.create_task(inbox(r, counts).run(take))
        try:
            await wait_until(lambda: taken == ["boom", "after"])
            await wait_until(lambda: counts["command_loop_errors"] == 1)
            deadline = time.monotonic() + 10
            while await r.get(keys.worker_cursor("w1")) != last:  # saved past both
                assert time.monotonic() < deadline, "the cursor was not saved"
                await asyncio.sleep(0.02)
            assert not task.done()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await r.aclose()

    await go()


async def test_an_unreadable_saved_cursor_is_ignored(redis_url):
    async def go() -> tuple[str, str]:
        r = aioredis.Redis.from_url(redis_url, decode_responses=True)
        raw = aioredis.Redis.from_url(redis_url)
        try:
            await raw.set(keys.worker_cursor("w1"), b"\xff not a stream id")
            replay = await inbox(r, Counter()).initial_cursor()
            await r.set(keys.worker_cursor("w1"), "1700000000000-3")
            return replay, await inbox(r, Counter()).initial_cursor()
        finally:
            await r.aclose()
            await raw.aclose()

    replay, saved = await go()
    ms, seq = replay.split("-")
    assert seq == "0" and abs(int(ms) - (time.time() - 600) * 1000) < 60_000  # the last 10 minutes again
    assert saved == "1700000000000-3"
