"""ensure_worker_running (real detached processes), heartbeat reading, status sync into the DB."""

from __future__ import annotations

import os
import signal
import threading
from datetime import UTC, datetime, timedelta

import orjson
import redis

from streaming import keys
from streaming.control.client import ControlClient, ensure_worker_running
from streaming.control.heartbeat import live_workers
from streaming.control.responses import aggregate
from streaming.control.status import live_status
from streaming.settings import load_settings
from tests.servers import wait_for


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def test_two_concurrent_callers_start_one_worker(worker_env, redis_client):
    settings = load_settings(worker_env)
    results: list[dict] = []
    errors: list[BaseException] = []

    def call():
        try:
            own = redis.Redis.from_url(worker_env["LIVERMORE_REDIS_URL"], decode_responses=True)
            try:
                results.append(ensure_worker_running(settings, own))
            finally:
                own.close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    pids = {r["pid"] for r in results}
    try:
        assert not errors, errors
        assert len(results) == 2 and len(pids) == 1
        assert sorted(r["spawned"] for r in results) == [False, True]
        assert len(live_workers(redis_client)) == 1
        again = ensure_worker_running(settings, redis_client)
        assert again == {"spawned": False, "worker_id": results[0]["worker_id"], "pid": pids.pop()}
        assert (settings.home / "logs" / "worker.log").exists()
        assert ControlClient(redis_client).send("status", timeout=10)["status"] == "success"
    finally:
        for r in results:
            _kill(r["pid"])
    wait_for(lambda: not live_workers(redis_client), timeout=20, message="the spawned worker to stop")


def test_live_workers_ignores_stale_and_prunes_garbage(redis_client):
    now = datetime.now(UTC)
    fresh = {"worker_id": "a", "last_heartbeat": now.isoformat(), "exchanges": {}}
    stale = {"worker_id": "b", "last_heartbeat": (now - timedelta(seconds=60)).isoformat()}
    ancient = {"worker_id": "c", "last_heartbeat": (now - timedelta(days=2)).isoformat()}
    redis_client.hset(keys.WORKERS, mapping={"a": orjson.dumps(fresh), "b": orjson.dumps(stale),
                                             "c": orjson.dumps(ancient), "d": "not json",
                                             "e": orjson.dumps({"worker_id": "e", "last_heartbeat": "noon"})})
    got = live_workers(redis_client)
    assert [w["worker_id"] for w in got] == ["a"] and got[0]["age_s"] >= 0
    assert sorted(redis_client.hkeys(keys.WORKERS)) == ["a", "b"]  # stale kept for a while, garbage gone
    assert [w["worker_id"] for w in live_workers(redis_client, max_age_s=120)] == ["a", "b"]


def test_aggregate_answers_of_several_workers():
    ok = {"worker_id": "w1", "status": "success", "result": {"symbols": 3}}
    ok2 = {"worker_id": "w2", "status": "success", "result": {"symbols": 4}}
    bad = {"worker_id": "w3", "status": "error", "reason": "connect failed: refused", "result": {}}
    assert aggregate([ok])["result"] == {"symbols": 3}
    both = aggregate([ok, ok2])
    assert both["status"] == "success" and both["result"]["symbols"] == 7
    mixed = aggregate([ok, bad])
    assert mixed["status"] == "error" and mixed["reason"] == "w3: connect failed: refused"


def test_client_times_out_with_a_useful_reason(redis_client):
    answer = ControlClient(redis_client).send("status", timeout=0.3)
    assert answer["status"] == "error"
    assert "no final answer within 0.3s" in answer["reason"] and "livermore worker" in answer["reason"]


def test_live_status_merges_exchange_hashes_and_worker_states(redis_client):
    redis_client.hset(keys.EXCHANGES_BY_NAME, mapping={"coinbase": 1, "binance": 2})
    redis_client.hset(keys.exchange_status(1), mapping={"connection_state": "connected"})
    beat = {"worker_id": "w1", "last_heartbeat": datetime.now(UTC).isoformat(), "exchanges": {"coinbase": "connected"}}
    redis_client.hset(keys.WORKERS, "w1", orjson.dumps(beat))
    status = live_status(redis_client)
    assert [w["worker_id"] for w in status["workers"]] == ["w1"]
    assert status["exchanges"]["coinbase"]["connection_state"] == "connected"
    assert status["exchanges"]["coinbase"]["workers"] == [{"worker_id": "w1", "state": "connected"}]
    assert status["exchanges"]["binance"] == {"id": 2, "workers": []}
