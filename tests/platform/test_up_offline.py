"""End to end: `livermore up --offline`, then everything through Dagster's GraphQL API.

Materializes exchanges, tiers and universe, launches start_streaming, sees candles, indicator
keys and candle-close events in Redis, then stop_streaming leaves the worker idle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import redis

from streaming import keys
from streaming.dagster_graphql_client import DagsterGraphQL
from streaming.redis_server import free_port
from tests.helpers.commands import LIVERMORE, clean_env
from tests.helpers.sim import TEST_START_MS
from tests.servers import wait_for

pytestmark = pytest.mark.slow

PARTITION = "coinbase"


@pytest.fixture
def platform(tmp_path, redis_url):
    port = free_port()
    env = clean_env({"LIVERMORE_HOME": str(tmp_path / "home"), "LIVERMORE_REDIS_URL": redis_url},
                    drop=("LIVERMORE_", "DAGSTER_"))
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [*LIVERMORE, "up", "--offline", "--port", str(port), "--sim-speed", "600", "--sim-symbols", "3",
         "--sim-start", str(TEST_START_MS)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    gql = DagsterGraphQL(f"http://127.0.0.1:{port}")
    try:
        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"livermore up exited: {(tmp_path / 'up.log').read_text()[-3000:]}")
            try:
                return gql.repository()
            except Exception:
                return None

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


def test_up_offline_materialize_start_stream_stop(platform):
    gql, r, tmp_path = platform
    ex_id = 1
    assert gql.run(assets=["exchanges"]) == "SUCCESS", _logs(tmp_path)
    assert r.hget(keys.EXCHANGES_BY_NAME, "coinbase") == str(ex_id)
    tier1 = {"ops": {"tier1_symbols": {"config": {"top_n": 3}}}}
    assert gql.run(assets=["tier1_symbols"], partition=PARTITION, run_config=tier1) == "SUCCESS", _logs(tmp_path)
    for asset in ("tier2_positions", "symbol_universe"):
        assert gql.run(assets=[asset], partition=PARTITION) == "SUCCESS", f"{asset}\n{_logs(tmp_path)}"
    universe = json.loads(r.get(keys.universe(ex_id)))
    symbols = [s["symbol"] for s in universe["symbols"]]
    assert symbols, universe

    sub = r.pubsub()
    sub.psubscribe(keys.candle_close_pattern(ex_id))
    start = {"ops": {"start_exchange_streaming": {"config": {"exchange": PARTITION, "timeout_s": 120.0}}}}
    status = gql.run("start_streaming", run_config=start, timeout=240)
    assert status == "SUCCESS", _logs(tmp_path)
    assert r.hget(keys.exchange_status(ex_id), "connection_state") == "connected"

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
    assert r.zcard(keys.candles(ex_id, sym, "5m")) >= 300  # warm-up backfill
    for tf in ("5m", "15m", "1h", "4h", "1d"):
        assert r.exists(keys.indicator(ex_id, sym, tf)), f"no indicator for {sym} {tf}"
    indicator = json.loads(r.get(keys.indicator(ex_id, sym, "5m")))
    assert {"timestamp", "macd_v", "signal", "histogram", "atr", "stage"} <= set(indicator)

    stop = {"ops": {"stop_exchange_streaming": {"config": {"exchange": PARTITION}}}}
    status = gql.run("stop_streaming", run_config=stop)
    assert status == "SUCCESS", _logs(tmp_path)
    wait_for(lambda: r.hget(keys.exchange_status(ex_id), "connection_state") in ("idle", "disconnected"),
             timeout=30, message="the exchange to go idle")
