"""The worker against the local exchange simulator: idle, start, stop, reload without reconnect, SIGTERM."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from streaming import keys
from streaming.control.client import ControlClient
from tests.helpers.sim import sim_clock_env, sim_config
from tests.servers import wait_for

testing = pytest.importorskip("streaming.sim.testing", reason="the exchange simulator is not there yet")

SYMS = ["SIM1-USD", "SIM2-USD", "SIM3-USD", "SIM4-USD"]  # what SimConfig(symbols=4) lists


@pytest.fixture(scope="module")
def sim():
    with testing.running_simulator(sim_config(symbols=4, seed=7, speed=60)) as running:
        assert running.symbols("coinbase") == SYMS
        yield running


def connections(sim, exchange: str = "coinbase") -> int:
    """Connections the simulator has accepted so far (total, not only open ones)."""
    return int(sim.stats(exchange)["connections"])


@pytest.fixture
def sim_env(worker_env, sim):
    env = {**worker_env, **sim_clock_env(sim)}
    for name, urls in sim.urls.items():
        env[f"LIVERMORE_{name.upper()}_WS_URL"] = urls.ws_url
        env[f"LIVERMORE_{name.upper()}_REST_URL"] = urls.rest_url
    return env


def set_universe(redis_client, symbols, exchange_id=1, exchange="coinbase"):
    redis_client.set(keys.universe(exchange_id), orjson.dumps({
        "exchange_id": exchange_id, "exchange": exchange, "updated_at": datetime.now(UTC).isoformat(),
        "symbols": [{"symbol": s, "tier": 1, "pool": "shared", "users": []} for s in symbols]}))


def events(redis_client):
    return [orjson.loads(f["json"]) for _, f in redis_client.xrange(keys.LIFECYCLE_STREAM)]


def test_idle_worker_opens_no_connection_then_start_and_stop(start_worker, sim, sim_env, redis_client):
    before = connections(sim)
    worker = start_worker("--no-warmup", env=sim_env)
    client = ControlClient(redis_client)
    assert client.send("status", timeout=10)["status"] == "success"
    assert connections(sim) == before  # idle: nothing opened

    set_universe(redis_client, SYMS[:2])
    pubsub = redis_client.pubsub()
    pubsub.subscribe(keys.lifecycle_channel(1))
    answer = client.send("start", "coinbase", timeout=60)
    assert answer["status"] == "success", answer
    assert answer["result"]["symbols"] == 2 and answer["result"]["state"] == "connected"
    assert connections(sim) == before + 1

    status = redis_client.hgetall(keys.exchange_status(1))
    assert status["connection_state"] == "connected" and status["connected_at"]
    assert [e["event"] for e in events(redis_client)][-1] == "exchange:connected"
    published = []
    wait_for(lambda: (m := pubsub.get_message(timeout=0.1)) and m["type"] == "message"
             and published.append(orjson.loads(m["data"])) is None and published[-1]["event"] == "exchange:connected",
             timeout=10, message="exchange:connected on the lifecycle channel")
    wait_for(lambda: worker.heartbeat()["exchanges"] == {"coinbase": "connected"}, timeout=10,
             message="heartbeat showing coinbase connected")
    # last_heartbeat follows the frames coming in
    first = redis_client.hget(keys.exchange_status(1), "last_heartbeat")
    wait_for(lambda: redis_client.hget(keys.exchange_status(1), "last_heartbeat") != first, timeout=15,
             message="last_heartbeat to move")
    engine = sa.create_engine(sim_env["LIVERMORE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            state = conn.execute(sa.text("select connection_state from exchange_connection_status "
                                         "where exchange_id = 1")).scalar_one()
        assert state == "connected"
    finally:
        engine.dispose()

    stopped = client.send("stop", "coinbase", timeout=30)
    assert stopped["status"] == "success" and stopped["result"]["was_running"] is True
    assert redis_client.hget(keys.exchange_status(1), "connection_state") == "idle"
    last = events(redis_client)[-1]
    assert last["event"] == "exchange:disconnected" and last["reason"] == "stopped by command"
    assert worker.heartbeat()["exchanges"] == {}
    pubsub.close()


def test_autostart_with_explicit_symbols_and_warm_up(start_worker, sim_env, redis_client):
    worker = start_worker("--autostart", "coinbase", "--symbols", "coinbase=SIM1-USD", env=sim_env)
    wait_for(lambda: worker.heartbeat()["exchanges"].get("coinbase") == "connected", timeout=90,
             message="autostarted coinbase to connect")
    stored = redis_client.zcard(keys.candles(1, "SIM1-USD", "5m"))
    assert stored >= 300, worker.log()[-3000:]  # warmed up before going live
    assert redis_client.exists(keys.indicator(1, "SIM1-USD", "1h"))


def test_reload_symbols_changes_subscriptions_without_reconnecting(start_worker, sim, sim_env, redis_client):
    # the periodic universe check (0.5 s in tests) must not see the new universe before the reload does
    start_worker("--no-warmup", env={**sim_env, "LIVERMORE_UNIVERSE_CHECK_S": "86400"})
    set_universe(redis_client, SYMS[:2])
    client = ControlClient(redis_client)
    assert client.send("start", "coinbase", timeout=60)["status"] == "success"
    opened = connections(sim)
    set_universe(redis_client, [SYMS[1], SYMS[2], SYMS[3]])
    answer = client.send("reload-symbols", "coinbase", timeout=30)
    assert answer["status"] == "success", answer
    assert answer["result"]["added"] == [SYMS[2], SYMS[3]] and answer["result"]["removed"] == [SYMS[0]]
    wait_for(lambda: redis_client.exists(keys.closed_marker(1, SYMS[3], "5m")) or
             client.send("status", "coinbase", timeout=10)["result"]["exchanges"]["coinbase"]["symbols"] == 3,
             timeout=20, message="the new symbols served")
    assert connections(sim) == opened  # no reconnect
    assert redis_client.hget(keys.exchange_status(1), "connection_state") == "connected"


def test_periodic_universe_check_picks_up_changes(start_worker, sim, sim_env, redis_client):
    start_worker("--no-warmup", env=sim_env)  # LIVERMORE_UNIVERSE_CHECK_S=0.5 in worker_env
    set_universe(redis_client, SYMS[:1])
    client = ControlClient(redis_client)
    assert client.send("start", "coinbase", timeout=60)["result"]["symbols"] == 1
    opened = connections(sim)
    set_universe(redis_client, SYMS[:3])
    wait_for(lambda: client.send("status", "coinbase", timeout=10)["result"]["exchanges"]["coinbase"]["symbols"]
             == 3, timeout=20, message="the universe check to add two symbols")
    assert connections(sim) == opened


def test_sigterm_marks_exchanges_idle_and_removes_the_heartbeat(start_worker, sim_env, redis_client):
    worker = start_worker("--no-warmup", "--symbols", "SIM1-USD", env=sim_env)
    assert ControlClient(redis_client).send("start", "coinbase", timeout=60)["status"] == "success"
    assert worker.terminate() == 0
    assert redis_client.hget(keys.exchange_status(1), "connection_state") == "idle"
    assert events(redis_client)[-1]["reason"] == "worker shutdown"
    assert redis_client.hget(keys.WORKERS, worker.worker_id) is None


def test_two_shards_serve_disjoint_complete_halves(start_worker, sim_env, redis_client):
    set_universe(redis_client, SYMS)
    a = start_worker("--no-warmup", "--shard", "1/2", env=sim_env)
    b = start_worker("--no-warmup", "--shard", "2/2", env=sim_env)
    answer = ControlClient(redis_client).send("start", "coinbase", timeout=60)
    assert answer["status"] == "success", answer
    per = answer["result"]["workers"]
    assert set(per) == {a.worker_id, b.worker_id}
    assert answer["result"]["symbols"] == len(SYMS)


def test_one_of_two_workers_stopping_leaves_the_exchange_connected(start_worker, sim_env, redis_client):
    a = start_worker("--no-warmup", "--symbols", "SIM1-USD", env=sim_env)
    b = start_worker("--no-warmup", "--symbols", "SIM2-USD", env=sim_env)
    answer = ControlClient(redis_client).send("start", "coinbase", timeout=60)
    assert answer["status"] == "success", answer
    for w in (a, b):
        assert redis_client.hget(keys.exchange_worker_status(1, w.worker_id), "connection_state") == "connected"
    assert b.terminate() == 0  # B marks itself idle: the exchange stays connected through A
    status = redis_client.hgetall(keys.exchange_status(1))
    assert status["connection_state"] == "connected", status
    assert not redis_client.exists(keys.exchange_worker_status(1, b.worker_id))
    assert events(redis_client)[-1]["worker_id"] == b.worker_id  # lifecycle events stay per worker
    assert a.terminate() == 0
    assert redis_client.hget(keys.exchange_status(1), "connection_state") == "idle"
