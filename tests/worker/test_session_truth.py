"""An exchange session in-process against the simulator and a real Redis: a live stream task that
ends on its own is reported as `error` with its cause and started again; a connection that
receives nothing for longer than its watchdog is not `connected`; stop empties connected_at and
last_error."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from streaming import keys
from streaming.adapters.base import ConnectionState
from streaming.worker.publisher import StatusPublisher
from streaming.worker.session import ExchangeSession
from tests.helpers.sim import sim_config

testing = pytest.importorskip("streaming.sim.testing", reason="the exchange simulator is not there yet")


@pytest.fixture(scope="module")
def sim():
    # real time, starting now: the adapter trusts the wall clock here
    with testing.running_simulator(sim_config(symbols=2, seed=3, speed=1, start_ms=int(time.time() * 1000))) as s:
        yield s


async def until(predicate, timeout: float, message: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(every)


@pytest.fixture
async def session(sim, redis_url):
    redis = aioredis.from_url(redis_url, decode_responses=True)
    urls = sim.urls["coinbase"]
    row = {"id": 1, "name": "coinbase", "ws_url": urls.ws_url, "rest_url": urls.rest_url, "is_active": True}
    session = ExchangeSession(row, redis, StatusPublisher(redis, None, 1, "coinbase", "w-test"), warm_up=False,
                              connect_timeout_s=30)
    await session.start({"SIM1-USD": (), "SIM2-USD": ()})
    yield session
    await session.stop("test over")
    await redis.aclose()


async def merged(session) -> dict[str, str]:
    return await session.redis.hgetall(keys.exchange_status(1))


async def test_a_live_stream_that_ends_on_its_own_is_an_error_and_is_started_again(session):
    assert (await merged(session))["connection_state"] == "connected"
    await session.stream.close()  # the stream's run() returns although nobody stopped the session
    await until(lambda: _done(session), 10, "the stream task to end")
    await session.beat()
    status = await merged(session)
    assert status["connection_state"] == "error", status
    assert "the live stream stopped: it returned; starting it again in 1s" in status["last_error"]

    async def connected_again():
        await session.beat()
        return (await merged(session))["connection_state"] == "connected"

    await until(connected_again, 15, "the restarted stream to connect", every=0.25)
    assert (await merged(session))["last_error"] == ""  # a new connection: nothing is wrong now


async def _done(session) -> bool:
    return session._stream_task.done()


async def test_a_connection_silent_past_its_watchdog_is_not_connected(sim, session):
    session.stream.socket.watchdog_s = 1.0  # the real socket, a test-sized patience
    states: list[str] = []

    async def watch():
        await session.beat()
        state = (await merged(session))["connection_state"]
        states.append(state)
        return state != "connected"

    sim.inject("stall", exchange="coinbase", seconds=4)
    await until(watch, 10, "the silent connection to stop counting as connected", every=0.2)
    status = await merged(session)
    assert status["connection_state"] in ("disconnected", "connecting"), status
    assert "no message for 1s" in status["last_error"] or "no frame" in status["last_error"], status

    async def back():
        await session.beat()
        return (await merged(session))["connection_state"] == "connected"

    await until(back, 30, "connected again once frames flow", every=0.25)


async def test_stop_empties_connected_at_and_last_error(session):
    await session.publisher.set_state(ConnectionState.DISCONNECTED, "x: reconnecting in 29.3s")
    await session.stop("stopped by command")
    status = await merged(session)
    assert status["connection_state"] == "idle" and status["connected_at"] == "" and status["last_error"] == ""
