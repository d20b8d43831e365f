"""A real worker against the simulator with one symbol stalled: the stale stream is detected past
its (small, injected) threshold, reported (status, lifecycle events, stats snapshot, /metrics),
resubscribed on the open connection and its gap filled over REST; the other symbols are unaffected."""

from __future__ import annotations

import socket
import time
import urllib.request

import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming import keys
from streaming.contracts.stats import stats_from_hash
from streaming.contracts.workers import LifecycleEvent
from streaming.control.client import ControlClient
from streaming.redis_server import free_port
from streaming.store.codec import decode_candle
from tests.helpers.sim import sim_clock_env, sim_config
from tests.servers import wait_for

testing = pytest.importorskip("streaming.sim.testing")

SYMS = ["SIM1-USD", "SIM2-USD", "SIM3-USD"]
STALLED = "SIM2-USD"
FIVE_MIN = 300_000


@pytest.fixture(scope="module")
def sim():
    with testing.running_simulator(sim_config(symbols=3, seed=11, speed=60)) as running:
        yield running


@pytest.fixture
def env(worker_env, sim):
    env = {**worker_env, **sim_clock_env(sim), "LIVERMORE_STALE_AFTER_S": "2",
           "LIVERMORE_METRICS_PORT": str(free_port())}
    for name, urls in sim.urls.items():
        env[f"LIVERMORE_{name.upper()}_WS_URL"] = urls.ws_url
        env[f"LIVERMORE_{name.upper()}_REST_URL"] = urls.rest_url
    return env


def stream_events(redis_client) -> list[LifecycleEvent]:
    out = []
    for _, fields in redis_client.xrange(keys.LIFECYCLE_STREAM):
        event = msgspec.json.decode(fields["json"], type=LifecycleEvent)
        if event.event.startswith("stream:"):
            out.append(event)
    return out


def snapshot(redis_client, worker_id):
    return stats_from_hash(redis_client.hgetall(keys.exchange_stats(1))).get(worker_id)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(metrics, name, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def stored_opens(redis_client, symbol: str) -> list[int]:
    return [int(score) for _, score in redis_client.zrange(keys.candles(1, symbol, "5m"), 0, -1, withscores=True)]


def test_one_stalled_symbol_is_detected_resubscribed_filled_and_recovers(start_worker, sim, env, redis_client):
    port = int(env["LIVERMORE_METRICS_PORT"])
    worker = start_worker("--autostart", "coinbase", "--symbols", "coinbase=" + ",".join(SYMS), "--no-warmup",
                          env=env)
    wait_for(lambda: worker.heartbeat()["exchanges"].get("coinbase") == "connected", timeout=60,
             message="coinbase connected")
    first = wait_for(lambda: (m := scrape(port)) and sample(m, "livermore_closes_published_total", exchange="coinbase",
                                                             timeframe="5m") > 0 and m, timeout=30,
                     message="a first 5m close in /metrics")
    opened = int(sim.stats("coinbase")["connections"])
    last_before = max(stored_opens(redis_client, STALLED))

    record = sim.inject("stall_symbol", exchange="coinbase", symbol=STALLED, seconds=12)
    assert record.connections == 1

    stale = wait_for(lambda: [e for e in stream_events(redis_client) if e.event == "stream:stale"], timeout=15,
                     message="a stream:stale event")
    assert [(e.symbol, e.timeframe) for e in stale] == [(STALLED, "5m")]  # the others are unaffected
    assert stale[0].exchange == "coinbase" and stale[0].state == "connected" and "resubscribing" in stale[0].reason
    assert redis_client.hget(keys.exchange_status(1), "stale_streams") == "1"
    stats = wait_for(lambda: (s := snapshot(redis_client, worker.worker_id)) and s.stale and s, timeout=10,
                     message="the stale stream in the stats snapshot")
    assert stats.stale == [f"{STALLED}:5m"]
    during = scrape(port)
    assert sample(during, "livermore_stale_streams", exchange="coinbase") == 1
    assert sample(during, "livermore_stream_stale_events_total", exchange="coinbase") == 1

    recovered = wait_for(lambda: [e for e in stream_events(redis_client) if e.event == "stream:recovered"],
                         timeout=30, message="a stream:recovered event")
    assert [(e.symbol, e.timeframe) for e in recovered] == [(STALLED, "5m")]
    assert int(sim.stats("coinbase")["connections"]) == opened  # resubscribed on the open connection
    answer = ControlClient(redis_client).send("status", "coinbase", timeout=10)
    live = answer["result"]["exchanges"]["coinbase"]["stream"]
    assert live["streams_resubscribes"] >= 1 and live["gapfill_requests"] >= 1

    # every 5m bar of the stall closed, none missing, with the exchange's values (also the bar the
    # clock closed as quiet before the stall was noticed: it is filled again as a correction)
    def filled():
        opens = [t for t in stored_opens(redis_client, STALLED) if t >= last_before]
        return len(opens) >= 4 and opens == list(range(last_before, opens[-1] + FIVE_MIN, FIVE_MIN)) and opens
    opens = wait_for(filled, timeout=30, message="the stalled symbol's gap filled")
    truth = {c.timestamp: c for c in sim.truth("coinbase", STALLED, "5m")}
    for raw, score in redis_client.zrangebyscore(keys.candles(1, STALLED, "5m"), opens[1], opens[-1],
                                                 withscores=True):
        assert decode_candle(raw).close == pytest.approx(truth[int(score)].close)  # the true bars

    after = wait_for(lambda: (s := snapshot(redis_client, worker.worker_id)) and not s.stale and s, timeout=10,
                     message="no stale stream in the stats snapshot")
    assert after.frames > stats.frames and after.closes["5m"] >= stats.closes["5m"]
    assert after.rest_requests >= 1 and after.streams == len(SYMS) * 5
    assert after.close_lag_ms_p50 is not None and after.close_lag_ms_p99 >= after.close_lag_ms_p50
    now = scrape(port)
    assert sample(now, "livermore_stale_streams", exchange="coinbase") == 0
    assert sample(now, "livermore_closes_published_total", exchange="coinbase", timeframe="5m") > \
        sample(first, "livermore_closes_published_total", exchange="coinbase", timeframe="5m")
    assert redis_client.hget(keys.exchange_status(1), "stale_streams") == "0"

    assert worker.terminate() == 0
    assert not redis_client.hexists(keys.exchange_stats(1), worker.worker_id)  # removed on a clean shutdown


def test_a_metrics_port_another_program_holds_fails_the_worker_at_once_with_the_port(start_worker, env):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        worker = start_worker(env={**env, "LIVERMORE_METRICS_PORT": str(port)}, wait=False)
        assert worker.proc is not None
        assert worker.proc.wait(timeout=30) == 2
        assert time.monotonic() - started < 15
    assert f"LIVERMORE_METRICS_PORT={port}: cannot serve /metrics on 127.0.0.1:{port}" in worker.log()
    assert "Traceback" not in worker.log()


def test_without_a_metrics_port_nothing_is_served_but_the_snapshot_is_written(start_worker, env, redis_client):
    port = int(env["LIVERMORE_METRICS_PORT"])
    worker = start_worker("--autostart", "coinbase", "--symbols", "coinbase=SIM1-USD", "--no-warmup",
                          env={**env, "LIVERMORE_METRICS_PORT": "0"})
    stats = wait_for(lambda: snapshot(redis_client, worker.worker_id), timeout=60, message="a stats snapshot")
    assert stats.streams == 5 and stats.since == worker.heartbeat()["started_at"]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
