"""Fixtures of the alert delivery tests: a migrated database, an HTTP receiver, alerts on the stream,
the service in-process (with its clock injectable) or as a `livermore notify` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa

from streaming.db.engine import make_engine
from streaming.db.migrate import upgrade
from streaming.notify.service import NotifyService, ServiceConfig
from tests.notify.alerts import make_alert, publish  # noqa: F401 - re-exported for the tests
from tests.notify.receiver import Receiver

SECRET = "whsec-test-0123456789abcdef"  # a test's own secret, checked never to leak


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    upgrade(sqlite_url)
    return sqlite_url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


async def wait_until(predicate: Callable[[], object], timeout: float = 20.0, message: str = "condition") -> object:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(redis_url: str, engine: sa.Engine, env: dict[str, str], clock=None, consumer: str = "test-1",
                  **config):
    r = aioredis.Redis.from_url(redis_url)
    svc = NotifyService(r, engine, ServiceConfig(consumer=consumer, **config), env=env, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    try:
        await wait_until(lambda: svc.ready.is_set() or task.done(), message="the service to start")
        if task.done():
            task.result()
        yield svc
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await r.aclose()


class FastClock:
    """Epoch seconds that jump ahead instead of waiting: the rate limiter's waits take no real time
    and every send is stamped with the virtual time (X-Livermore-Timestamp)."""

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    async def sleep_until(self, when: float | None, wake: asyncio.Event) -> None:
        if when is None:
            await wake.wait()
            return
        await asyncio.sleep(0)
        if not wake.is_set():
            self.t = max(self.t, when)
