"""End to end: `livermore up --offline`, then everything through Dagster's GraphQL API.

Materializes exchanges, tiers and universe, launches start_streaming, sees candles, indicator
keys and candle-close events in Redis, reads the live_candles observation and checks the
sensors report, then stop_streaming leaves the worker idle. A second test stalls one symbol in
the simulator and sees the WARN (it needs the simulator's stall_symbol fault and the worker's
stats snapshot).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest
import redis

from streaming import keys
from streaming.redis_server import free_port
from tests.helpers.commands import LIVERMORE, clean_env
from tests.helpers.dagster_api import DagsterApi
from tests.helpers.sim import TEST_START_MS
from tests.servers import wait_for

pytestmark = pytest.mark.slow

PARTITION = "coinbase"
STALE_AFTER_S = "10"
LIVE_SENSOR_S = "5"  # the sensor's observations every 5 s (Dagster's least) instead of 15: the test waits for four


@pytest.fixture
def platform(tmp_path, redis_url):
    port = free_port()
    # a stream is stale after 10 s without a frame instead of 60: the stall below is seen 50 s sooner
    env = clean_env({"LIVERMORE_HOME": str(tmp_path / "home"), "LIVERMORE_REDIS_URL": redis_url,
                     "LIVERMORE_STALE_AFTER_S": STALE_AFTER_S, "LIVERMORE_LIVE_SENSOR_S": LIVE_SENSOR_S},
                    drop=("LIVERMORE_", "DAGSTER_"))
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*LIVERMORE, "up", "--offline", "--port", str(port), "--sim-speed", "600", "--sim-symbols", "3",
         "--sim-start", str(TEST_START_MS)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    gql = DagsterApi(port)
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"livermore up exited: {(tmp_path / 'up.log').read_text()[-3000:]}")
            return gql.ready()

        wait_for(ready, timeout=180, interval=1.0, message="the Dagster code location")
        yield gql, redis.Redis.from_url(redis_url, decode_responses=True), tmp_path
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _logs(tmp_path) -> str:
    out = []
    for p in sorted((tmp_path / "home" / "logs").glob("*.log")):
        out.append(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}")
    return "\n".join(out)


def _materialize_and_start(gql: DagsterApi, r: redis.Redis, tmp_path) -> list[str]:
    assert gql.run(assets=["exchanges"]) == "SUCCESS", _logs(tmp_path)
    assert r.hget(keys.EXCHANGES_BY_NAME, "coinbase") == "1"
    tier1 = {"ops": {"tier1_symbols": {"config": {"top_n": 3}}}}
    # the three of the partition in one run, as refresh_symbols does: one run's start-up, not three
    symbols_group = ["tier1_symbols", "tier2_positions", "symbol_universe"]
    assert gql.run(assets=symbols_group, partition=PARTITION, run_config=tier1) == "SUCCESS", _logs(tmp_path)
    universe = json.loads(r.get(keys.universe(1)))
    symbols = [s["symbol"] for s in universe["symbols"]]
    assert symbols, universe
    start = {"ops": {"start_exchange_streaming": {"config": {"exchange": PARTITION, "timeout_s": 120.0}}}}
    assert gql.run("start_streaming", run_config=start, timeout=240) == "SUCCESS", _logs(tmp_path)
    assert r.hget(keys.exchange_status(1), "connection_state") == "connected"
    return symbols


def _wait_observation(gql: DagsterApi, tmp_path, accept) -> dict:
    """The latest observation of live_candles/coinbase once `accept` holds it (the sensor ticks every 5 s)."""
    seen: list[dict | None] = [None]

    def check():
        seen[0] = gql.latest_observation("live_candles", PARTITION)
        return seen[0] if seen[0] and accept(seen[0]) else None

    try:
        return wait_for(check, timeout=120, interval=2.0, message="the live_candles observation")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last one: {seen[0]}\n{_logs(tmp_path)}") from None


def test_up_offline_materialize_start_stream_observe_stall_stop(platform):
    gql, r, tmp_path = platform
    ex_id = 1
    sub = r.pubsub()
    sub.psubscribe(keys.candle_close_pattern(ex_id))
    symbols = _materialize_and_start(gql, r, tmp_path)

    event = None
    deadline = time.monotonic() + 60
    while event is None and time.monotonic() < deadline:
        msg = sub.get_message(timeout=1.0)
        if msg and msg["type"] == "pmessage":
            event = json.loads(msg["data"])
    sub.close()
    assert event is not None, "no candle-close event within 60 s\n" + _logs(tmp_path)
    assert event["exchange_id"] == ex_id and event["symbol"] in symbols
    sym = symbols[0]
    assert r.zcard(keys.candles(ex_id, sym, "5m")) >= 300  # the warm-up history
    for tf in ("5m", "15m", "1h", "4h", "1d"):
        assert r.exists(keys.indicator(ex_id, sym, tf)), f"no indicator for {sym} {tf}"
    indicator = json.loads(r.get(keys.indicator(ex_id, sym, "5m")))
    assert {"timestamp", "macd_v", "signal", "histogram", "atr", "stage"} <= set(indicator)

    # the live side in Dagster: live_candles_sensor observes the streaming exchange and checks it
    observation = _wait_observation(gql, tmp_path, lambda o: o.get("state") in ("live", "degraded"))
    assert observation["should_run"] is True and observation["workers"] == 1
    alive = gql.latest_check("live_candles", f"{PARTITION}_worker_alive")
    assert alive is not None and alive["status"] == "SUCCEEDED", alive
    assert alive["evaluation"]["severity"] == "ERROR"  # how bad it would be: no worker for a running exchange
    # the worker's own stats: every stream live, new closes make Dagster's freshness policy see
    # the asset fresh; then one symbol stalls in the simulator and the streams_live check warns
    # (a tick may read a stats snapshot the worker wrote before its first close: no lag in it yet)
    healthy = _wait_observation(gql, tmp_path, lambda o: o.get("streams", 0) > 0 and o.get("state") == "live"
                                and o.get("close_lag_ms_p99") is not None)
    assert healthy["streams_live"] == healthy["streams"] and healthy["streams_stale"] == 0
    assert healthy["close_lag_ms_p50"] is not None and healthy["close_lag_ms_p99"] >= healthy["close_lag_ms_p50"]
    # new closes are materializations: Dagster's freshness policy sees the asset fresh
    wait_for(lambda: gql.freshness("live_candles") == "HEALTHY", timeout=120, interval=3.0,
             message="Dagster to see live_candles fresh")
    assert gql.latest_check("live_candles", f"{PARTITION}_fresh")["status"] == "SUCCEEDED"

    urls = json.loads((tmp_path / "home" / "offline" / "sim-urls.json").read_text())
    stall = json.dumps({"fault": "stall_symbol", "symbol": symbols[0], "seconds": 900}).encode()
    request = urllib.request.Request(urls[PARTITION]["rest_url"] + "/_sim/fault", data=stall, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    degraded = _wait_observation(gql, tmp_path, lambda o: o.get("streams_stale", 0) > 0)
    assert degraded["state"] == "degraded" and symbols[0] in degraded["stale"]
    warn = gql.latest_check("live_candles", f"{PARTITION}_streams_live")
    assert warn["status"] == "FAILED" and warn["evaluation"]["severity"] == "WARN", warn
    assert gql.latest_check("live_candles", f"{PARTITION}_worker_alive")["status"] == "SUCCEEDED"

    stop = {"ops": {"stop_exchange_streaming": {"config": {"exchange": PARTITION}}}}
    status = gql.run("stop_streaming", run_config=stop)
    assert status == "SUCCESS", _logs(tmp_path)
    wait_for(lambda: r.hget(keys.exchange_status(ex_id), "connection_state") in ("idle", "disconnected"),
             timeout=30, message="the exchange to go idle")
