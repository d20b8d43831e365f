"""The worker as a real process against a real Redis: idle start, commands, errors, shutdown."""

from __future__ import annotations

import orjson
import pytest

from streaming import keys
from streaming.control.client import ControlClient
from streaming.control.heartbeat import live_workers
from tests.helpers.commands import run_worker
from tests.servers import wait_for


def test_idle_worker_beats_answers_status_and_stops_on_sigterm(start_worker, redis_client):
    worker = start_worker()
    beat = worker.heartbeat()
    assert beat["exchanges"] == {} and beat["pid"] == worker.proc.pid and beat["shard"] is None
    assert redis_client.exists(keys.worker_heartbeat(worker.worker_id))

    answer = ControlClient(redis_client).send("status", timeout=10)
    assert answer["status"] == "success", answer
    assert answer["result"]["worker_id"] == worker.worker_id
    assert answer["result"]["exchanges"] == {}
    statuses = [r["status"] for r in ControlClient(redis_client).responses(answer["command_id"])]
    assert statuses == ["ack", "success"]

    assert worker.terminate() == 0
    assert live_workers(redis_client) == []
    assert not redis_client.exists(keys.worker_heartbeat(worker.worker_id))
    assert "worker " + worker.worker_id + " stopped" in worker.log()


def test_command_sent_before_the_worker_started_is_executed(start_worker, redis_client):
    client = ControlClient(redis_client)
    command_id = client.post("status")
    assert client.responses(command_id) == []
    worker = start_worker()
    answer = client.wait(command_id, timeout=10)
    assert answer["status"] == "success"
    assert answer["result"]["worker_id"] == worker.worker_id


def test_expired_command_gets_an_expired_error(start_worker, redis_client):
    stale = ControlClient(redis_client, ttl_s=0.001)
    command_id = stale.post("stop", "coinbase")
    start_worker()
    answer = ControlClient(redis_client).wait(command_id, timeout=10)
    assert answer["status"] == "error"
    assert answer["reason"].startswith("expired")
    # expired commands are answered, never executed: no ack
    assert [r["status"] for r in ControlClient(redis_client).responses(command_id)] == ["error"]


@pytest.mark.parametrize(("fields", "reason"), [
    ({"id": "bad-json", "json": "{not json"}, "invalid JSON"),
    ({"id": "no-verb", "exchange": "coinbase"}, "missing field 'command'"),
    ({"id": "bad-verb", "command": "explode"}, "unknown command 'explode'"),
    ({"id": "no-exchange", "command": "start"}, "start needs an exchange"),
    ({"id": "bad-exchange", "command": "start", "exchange": "Coin base"}, "invalid exchange name"),
    ({"id": "bad-user", "command": "start", "exchange": "coinbase", "user": "root"}, "user must be"),
    ({"id": "bad-symbol", "command": "start", "exchange": "coinbase", "symbols": "BTC-USD,a:b"}, "rejected"),
    ({"id": "bad-time", "command": "status", "expires_at": "tomorrow"}, "expires_at must be"),
    ({"id": "unknown-exchange", "command": "start", "exchange": "kraken"}, "unknown exchange 'kraken'"),
    ({"id": "no-universe", "command": "start", "exchange": "coinbase"}, "materialize symbol_universe"),
    ({"id": "reload-idle", "command": "reload-symbols", "exchange": "coinbase"}, "is not running"),
])
def test_malformed_and_impossible_commands_get_an_error_and_the_worker_keeps_running(
        start_worker, redis_client, fields, reason):
    worker = start_worker()
    redis_client.xadd(keys.COMMANDS_STREAM, {"no": "id at all"})  # unanswerable: counted and logged
    redis_client.xadd(keys.COMMANDS_STREAM, fields)
    answer = ControlClient(redis_client).wait(fields["id"], timeout=15)
    assert answer["status"] == "error", answer
    assert reason in answer["reason"]
    assert ControlClient(redis_client).send("status", timeout=10)["status"] == "success"
    assert worker.proc.poll() is None
    assert worker.heartbeat()["exchanges"] == {}


def test_stop_of_an_idle_exchange_succeeds_and_opens_nothing(start_worker, redis_client):
    start_worker()
    answer = ControlClient(redis_client).send("stop", "binance", timeout=10)
    assert answer["status"] == "success"
    assert answer["result"] == {"exchange": "binance", "state": "idle", "was_running": False}


def test_commands_for_another_target_are_left_alone(start_worker, redis_client):
    worker = start_worker("--shard", "2/3")
    client = ControlClient(redis_client)
    other = client.post("status", target="shard:1/3")
    mine = client.post("status", target="shard:2/3")
    by_id = client.post("status", target=worker.worker_id)
    assert client.wait(mine, timeout=10)["result"]["shard"] == "2/3"
    assert client.wait(by_id, timeout=10)["status"] == "success"
    assert client.responses(other) == []


def test_each_of_two_workers_executes_a_broadcast_command_once(start_worker, redis_client):
    a, b = start_worker(), start_worker()
    answer = ControlClient(redis_client).send("status", timeout=10)
    assert answer["status"] == "success"
    finals = [r for r in answer["responses"] if r["status"] == "success"]
    assert sorted(r["worker_id"] for r in finals) == sorted([a.worker_id, b.worker_id])
    acks = [r for r in ControlClient(redis_client).responses(answer["command_id"]) if r["status"] == "ack"]
    assert len(acks) == 2


def test_restarted_worker_with_the_same_id_does_not_run_old_commands_again(start_worker, redis_client):
    first = start_worker("--worker-id", "fixed-id")
    client = ControlClient(redis_client)
    done = client.send("status", timeout=10)
    assert done["status"] == "success"
    first.terminate()
    start_worker("--worker-id", "fixed-id")
    fresh = client.send("status", timeout=10)
    assert fresh["status"] == "success"
    # the command handled before the restart was not answered a second time
    assert [r["status"] for r in client.responses(done["command_id"])] == ["ack", "success"]


def test_a_worker_that_cannot_reach_redis_fails_with_one_line(worker_env):
    from streaming.redis_server import free_port

    env = {**worker_env, "LIVERMORE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    out = run_worker([], env)
    assert out.returncode == 2
    assert "unreachable" in out.stderr and "Traceback" not in out.stderr


def test_bad_options_are_usage_errors(worker_env):
    for args, text in ((["--shard", "4/3"], "K must be between 1 and N"), (["--symbols", "a:b"], "rejected"),
                       (["--user", "abc"], "not a user id"), (["--autostart", "Bad Name"], "not an exchange")):
        out = run_worker(args, worker_env)
        assert out.returncode == 2, (args, out.stderr)
        assert text in out.stderr


def test_worker_user_must_be_a_system_user(worker_env):
    out = run_worker(["--user", "42"], worker_env)
    assert out.returncode == 2
    assert "user 42 does not exist" in out.stderr


def test_heartbeat_json_is_valid(start_worker, redis_client):
    worker = start_worker("--shard", "1/2")
    raw = redis_client.hget(keys.WORKERS, worker.worker_id)
    record = orjson.loads(raw)
    assert record["shard"] == "1/2" and record["worker_id"] == worker.worker_id
    wait_for(lambda: orjson.loads(redis_client.hget(keys.WORKERS, worker.worker_id))["last_heartbeat"]
             != record["last_heartbeat"], timeout=10, message="a second heartbeat")


def test_start_against_an_unreachable_exchange_fails_with_connect_failed(start_worker, redis_client, worker_env):
    import sqlalchemy as sa

    from streaming.db.engine import make_engine
    from streaming.db.schema import exchange_connection_status
    from streaming.redis_server import free_port

    port = free_port()  # nothing listens there
    env = {**worker_env, "LIVERMORE_COINBASE_WS_URL": f"ws://127.0.0.1:{port}",
           "LIVERMORE_COINBASE_REST_URL": f"http://127.0.0.1:{port}"}
    worker = start_worker("--no-warmup", "--connect-timeout", "2", "--symbols", "BTC-USD", env=env)
    answer = ControlClient(redis_client).send("start", "coinbase", timeout=30)
    assert answer["status"] == "error"
    assert answer["reason"].startswith("connect failed") and "ConnectionRefused" in answer["reason"]
    status = redis_client.hgetall(keys.exchange_status(1))
    assert status["connection_state"] == "error" and status["last_error"].startswith("connect failed")
    events = [orjson.loads(f["json"]) for _, f in redis_client.xrange(keys.LIFECYCLE_STREAM)]
    assert events[0]["event"] == "exchange:connecting" and events[0]["worker_id"] == worker.worker_id
    assert events[-1]["event"] == "exchange:disconnected" and events[-1]["state"] == "error"
    engine = make_engine(worker_env["LIVERMORE_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.select(exchange_connection_status)
                               .where(exchange_connection_status.c.exchange_id == 1)).one()
    finally:
        engine.dispose()
    assert row.connection_state == "error" and row.last_error.startswith("connect failed")
    assert worker.heartbeat()["exchanges"] == {}
