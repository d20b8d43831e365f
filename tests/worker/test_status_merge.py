"""Several shard workers on one exchange: each writes its own status, the shared hash is their merge."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis.asyncio as aioredis

from streaming import keys
from streaming.adapters.base import ConnectionState
from streaming.control.heartbeat import heartbeat_record
from streaming.control.merge import STATE_PRECEDENCE, live_statuses, merge_statuses
from streaming.worker.publisher import StatusPublisher

NOW = "2026-11-24T12:00:00+00:00"


def ts(minute: int) -> str:
    return f"2026-11-24T11:{minute:02d}:00+00:00"


def status(state: str, updated: int = 0, connected_at: str = "", last_heartbeat: str = "",
           last_error: str = "") -> dict[str, str]:
    return {"connection_state": state, "updated_at": ts(updated), "connected_at": connected_at,
            "last_heartbeat": last_heartbeat, "last_error": last_error, "worker_id": "w"}


# -- the pure merge

@pytest.mark.parametrize("states", list(itertools.product(STATE_PRECEDENCE, repeat=2))
                         + list(itertools.product(STATE_PRECEDENCE, repeat=3)))
def test_merged_state_is_the_best_of_all_workers(states):
    merged = merge_statuses({f"w{i}": status(s, i) for i, s in enumerate(states)}, NOW)
    assert merged["connection_state"] == min(states, key=STATE_PRECEDENCE.index)
    assert merged["updated_at"] == NOW
    assert orjson.loads(merged["worker_states"]) == {f"w{i}": s for i, s in enumerate(states)}


def test_one_worker_comes_out_unchanged():
    for state in STATE_PRECEDENCE:
        own = status(state, 5, connected_at=ts(1), last_heartbeat=ts(4), last_error="boom")
        merged = merge_statuses({"a": own}, NOW)
        assert {k: merged[k] for k in ("connection_state", "connected_at", "last_heartbeat", "last_error")} == \
            {k: own[k] for k in ("connection_state", "connected_at", "last_heartbeat", "last_error")}


def test_connected_and_stopped_is_connected():
    merged = merge_statuses({"a": status("connected", 3, connected_at=ts(2), last_heartbeat=ts(9)),
                             "b": status("idle", 8, connected_at=ts(1), last_heartbeat=ts(5))}, NOW)
    assert merged["connection_state"] == "connected"
    assert merged["connected_at"] == ts(2)  # of the connected worker, not the stopped one's older one
    assert merged["last_heartbeat"] == ts(9)


def test_both_stopped_is_idle_or_disconnected():
    assert merge_statuses({"a": status("idle", 1), "b": status("idle", 2)}, NOW)["connection_state"] == "idle"
    assert merge_statuses({"a": status("idle", 1), "b": status("disconnected", 2, last_error="gone")},
                          NOW) == {**merge_statuses({"b": status("disconnected", 2, last_error="gone")}, NOW),
                                   "worker_states": '{"a":"idle","b":"disconnected"}'}


def test_error_and_connected_is_connected():
    merged = merge_statuses({"a": status("error", 4, last_error="refused"),
                             "b": status("connected", 2, connected_at=ts(1), last_heartbeat=ts(3))}, NOW)
    assert merged["connection_state"] == "connected"
    assert merged["connected_at"] == ts(1)
    assert merged["last_heartbeat"] == ts(3)
    assert merged["last_error"] == "refused"  # the most recent error is kept, as one worker keeps its own


def test_connected_at_is_the_earliest_and_heartbeat_the_latest_of_the_connected():
    merged = merge_statuses({"a": status("connected", 1, connected_at=ts(5), last_heartbeat=ts(20)),
                             "b": status("connected", 2, connected_at=ts(3), last_heartbeat=ts(30)),
                             "c": status("connecting", 9)}, NOW)
    assert (merged["connected_at"], merged["last_heartbeat"]) == (ts(3), ts(30))


def test_error_takes_the_last_error_of_the_errored_worker():
    merged = merge_statuses({"a": status("error", 2, last_error="tls failed"),
                             "b": status("disconnected", 5, last_error="closed by peer"),
                             "c": status("error", 4, last_error="refused")}, NOW)
    assert merged["connection_state"] == "error" and merged["last_error"] == "refused"


def test_unknown_state_counts_as_error_and_nothing_is_idle():
    assert merge_statuses({"a": status("weird", 1), "b": status("idle", 2)}, NOW)["connection_state"] == "error"
    assert merge_statuses({}, NOW)["connection_state"] == "idle"


def beat(worker_id: str, started: str) -> dict[str, str]:
    return {"worker_id": worker_id, "started_at": started}


def test_only_workers_with_a_fresh_heartbeat_count():
    statuses = {"me": status("idle", 5), "alive": status("connected", 5), "dead": status("connected", 5),
                "restarted": status("connected", 5), "empty": {}}
    beats = [beat("alive", ts(1)), beat("restarted", ts(10)), beat("empty", ts(1))]  # no "dead", no "me"
    assert set(live_statuses(statuses, beats, own_worker_id="me")) == {"me", "alive"}
    assert set(live_statuses(statuses, beats)) == {"alive"}


# -- through Redis: two workers' publishers on one exchange

async def _two_workers(redis_url: str, dead_b: bool = False) -> list[dict[str, str]]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    seen: list[dict[str, str]] = []
    try:
        now = datetime.now(UTC)
        for worker_id in ("A", "B"):
            stamp = now - timedelta(seconds=60) if (dead_b and worker_id == "B") else now
            record = heartbeat_record(worker_id, (now - timedelta(seconds=120)).isoformat(), {}, None, None, stamp)
            await client.hset(keys.WORKERS, worker_id, orjson.dumps(record))
        a = StatusPublisher(client, None, 1, "coinbase", "A")
        b = StatusPublisher(client, None, 1, "coinbase", "B")

        async def merged() -> dict[str, str]:
            seen.append(await client.hgetall(keys.exchange_status(1)))
            return seen[-1]

        await a.set_state(ConnectionState.CONNECTING)
        await b.set_state(ConnectionState.CONNECTING)
        await a.set_state(ConnectionState.CONNECTED)
        await merged()                                                        # 0: A connected, B connecting
        await b.set_state(ConnectionState.CONNECTED)
        await b.set_state(ConnectionState.IDLE, "stopped by command")
        await merged()                                                        # 1: A connected, B stopped
        await b.set_state(ConnectionState.ERROR, "refused")
        await a.heartbeat(datetime.now(UTC).timestamp())
        await merged()                                                        # 2: A connected, B error
        await a.set_state(ConnectionState.IDLE, "worker shutdown")
        await merged()                                                        # 3: A stopped, B error
        await b.set_state(ConnectionState.IDLE, "worker shutdown")
        await merged()                                                        # 4: both stopped
        own = await client.hgetall(keys.exchange_worker_status(1, "A"))
        assert own["connection_state"] == "idle" and own["worker_id"] == "A"
        assert 0 < await client.ttl(keys.exchange_worker_status(1, "A")) <= keys.WORKER_STATUS_TTL_S
        await a.forget()
        assert not await client.exists(keys.exchange_worker_status(1, "A"))
    finally:
        await client.aclose()
    return seen


async def test_two_publishers_on_one_exchange(redis_url):
    seen = await _two_workers(redis_url)
    assert [s["connection_state"] for s in seen] == ["connected", "connected", "connected", "error", "idle"]
    assert orjson.loads(seen[1]["worker_states"]) == {"A": "connected", "B": "idle"}
    assert seen[2]["last_error"] == "refused"
    assert seen[0]["connected_at"] and seen[1]["connected_at"] == seen[0]["connected_at"]  # A's, the earliest


async def test_a_worker_with_a_stale_heartbeat_no_longer_counts(redis_url):
    seen = await _two_workers(redis_url, dead_b=True)
    # B is dead for A: A stopped means idle although B's last own word was "error"
    assert [s["connection_state"] for s in seen][3:] == ["idle", "idle"]
    assert orjson.loads(seen[2]["worker_states"]) == {"A": "connected"}  # written by A: B's error unseen
    assert seen[2]["last_error"] == ""


async def test_refresh_drops_a_connected_peer_that_died(redis_url):
    """The survivor is reconnecting (no news of its own): its periodic refresh still drops the dead peer."""

    async def main() -> list[str]:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            now = datetime.now(UTC)
            started = (now - timedelta(seconds=120)).isoformat()
            for worker_id in ("A", "B"):
                record = heartbeat_record(worker_id, started, {}, None, None, now)
                await client.hset(keys.WORKERS, worker_id, orjson.dumps(record))
            a = StatusPublisher(client, None, 1, "coinbase", "A")
            b = StatusPublisher(client, None, 1, "coinbase", "B")
            await a.set_state(ConnectionState.CONNECTED)
            await b.set_state(ConnectionState.ERROR, "connect failed")
            states = [(await client.hgetall(keys.exchange_status(1)))["connection_state"]]
            # A is SIGKILLed: its heartbeat goes stale, its own status stays "connected"
            stale = heartbeat_record("A", started, {}, None, None, now - timedelta(seconds=60))
            await client.hset(keys.WORKERS, "A", orjson.dumps(stale))
            states.append((await client.hgetall(keys.exchange_status(1)))["connection_state"])
            await b.refresh()
            states.append((await client.hgetall(keys.exchange_status(1)))["connection_state"])
            return states
        finally:
            await client.aclose()

    assert await main() == ["connected", "connected", "error"]


def test_stale_streams_are_summed_over_the_workers_and_absent_when_none_reported():
    assert "stale_streams" not in merge_statuses({"a": status("connected", 1), "b": status("connected", 2)}, NOW)
    merged = merge_statuses({"a": {**status("connected", 1), "stale_streams": "2"},
                             "b": {**status("connected", 2), "stale_streams": "0"},
                             "c": {**status("connected", 3), "stale_streams": "junk"}}, NOW)
    assert merged["stale_streams"] == "2"


def test_history_missing_is_summed_over_the_workers_and_absent_when_none_reported():
    assert "history_missing" not in merge_statuses({"a": status("connected", 1), "b": status("connected", 2)}, NOW)
    merged = merge_statuses({"a": {**status("connected", 1), "history_missing": "3"},
                             "b": {**status("connected", 2), "history_missing": "4"},
                             "c": {**status("connected", 3), "history_missing": "junk"}}, NOW)
    assert merged["history_missing"] == "7"
