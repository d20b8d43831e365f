"""A warm-up that fails for some streams is fetched again in the background: a worker subprocess
against the simulator behind a REST proxy that answers 429 to the candle requests of some streams
(past the REST client's retries) until the exchange recovers.

The worker comes up `connected` with the streams missing history counted in its status and stats
snapshot; once the exchange answers again their history is installed, the count goes back to 0,
the stored candles equal the simulator's truth on every timeframe without a hole, every bar that
closed after the start has exactly one close event (none for the history), and MACD-V equals the
batch computation over the stored bars."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import orjson
import pandas as pd
import pytest

from streaming import keys
from streaming.control.client import ControlClient
from streaming.gaps import fill_gaps
from streaming.indicators.macd_v_batch import macd_v_frame
from streaming.models import Candle
from streaming.timeframes import TIMEFRAMES, bucket_start
from tests.helpers.sim import sim_clock_env, sim_config
from tests.helpers.slow_rest import SlowRest
from tests.pipeline.helpers import Subscriber
from tests.servers import wait_for
from tests.worker.test_gap_free import closes_between, same_bar, stored
from tests.worker.test_worker_live import set_universe

testing = pytest.importorskip("streaming.sim.testing", reason="the exchange simulator is not there yet")

SPEED = 300.0  # a 5m bar lasts one real second
M5 = 300_000
EX_ID = 2  # binance


def status_field(redis_client, name: str) -> str | None:
    return redis_client.hget(keys.exchange_status(EX_ID), name)


def status_text(env: dict[str, str]) -> str:
    """`livermore status` as a user sees it."""
    cli = "import sys; from streaming.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", cli, "status"], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def snapshot_missing(redis_client) -> list[int]:
    return [orjson.loads(v)["history_missing"] for v in redis_client.hvals(keys.exchange_stats(EX_ID))]


def test_a_failed_warm_up_is_retried_reported_until_filled_and_publishes_nothing_twice(
        start_worker, worker_env, redis_url, redis_client):
    with testing.running_simulator(sim_config(symbols=2, seed=5, speed=SPEED)) as sim, \
            SlowRest(sim.urls["binance"].rest_url, delay_s=0.05) as rest:
        syms = sim.symbols("binance")
        env = {**worker_env, **sim_clock_env(sim)}
        for name, urls in sim.urls.items():
            env[f"LIVERMORE_{name.upper()}_WS_URL"] = urls.ws_url
            env[f"LIVERMORE_{name.upper()}_REST_URL"] = rest.url if name == "binance" else urls.rest_url
        set_universe(redis_client, syms, EX_ID, "binance")
        # the exchange throttles every 15m request and one symbol's 1h ones
        failing = {(s, "15m") for s in syms} | {(syms[0], "1h")}

        def refuse(query: str) -> bool:
            return "klines" in query and any(f"symbol={s}&" in query + "&" and f"interval={tf}&" in query + "&"
                                             for s, tf in failing)

        rest.refuse = refuse
        sub = Subscriber(redis_url, [keys.candle_close_pattern(EX_ID)])
        client = ControlClient(redis_client)
        try:
            worker = start_worker(env=env)
            answer = client.send("start", "binance", timeout=120)
            assert answer["status"] == "success", answer
            start = answer["result"]["warm_up"]["until_ms"]
            assert answer["result"]["warm_up"]["failed"] == len(failing), answer["result"]["warm_up"]
            assert rest.refused >= 6 * len(failing)  # each tried 1 + 5 times by the REST client

            # connected, with the holes reported
            wait_for(lambda: status_field(redis_client, "history_missing") == str(len(failing)), timeout=30,
                     message="history_missing in the status")
            assert status_field(redis_client, "connection_state") == "connected"
            wait_for(lambda: snapshot_missing(redis_client) == [len(failing)], timeout=30,
                     message="history_missing in the stats snapshot")
            text = status_text(env)
            assert f"    {len(failing)} streams missing history: warm-up failed, retrying" in text.splitlines(), text
            assert all(len(line) <= 80 for line in text.splitlines()), text
            for sym, tf in failing:  # nothing from before the start: the history is missing
                assert all(c.timestamp >= bucket_start(start, tf) for c in stored(redis_client, EX_ID, sym, tf))
            time.sleep(3.0)  # a retry or two while the exchange still throttles
            assert status_field(redis_client, "history_missing") == str(len(failing))

            # the exchange recovers: the history arrives in the background
            rest.refuse = None
            wait_for(lambda: status_field(redis_client, "history_missing") == "0", timeout=90,
                     message="the missing history filled")
            wait_for(lambda: snapshot_missing(redis_client) == [0], timeout=30,
                     message="history_missing 0 in the stats snapshot")
            assert "missing history" not in status_text(env)
            filled = sim.now_ms()
            wait_for(lambda: len(closes_between(filled, sim.now_ms(), "15m")) >= 2, timeout=60,
                     message="bars closing after the history was filled")
            end = sim.now_ms() - 3 * M5
            time.sleep(1.0)
            assert worker.terminate() == 0
            sub.settle(redis_client)
            events = [d for c, d in sub.messages if c.startswith("channel:exchange:")]
            problems: list[str] = []
            for sym in syms:
                for tf in TIMEFRAMES:
                    problems += _check_stream(redis_client, sim, events, sym, tf, start, end)
            assert problems == [], "\n".join(problems[:40])
        finally:
            sub.close()


def _check_stream(redis_client, sim, events, sym: str, tf: str, start: int, end: int) -> list[str]:
    problems: list[str] = []
    truth = {c.timestamp: c for c in sim.truth("binance", sym, tf)}
    mine = [d for d in events if d["symbol"] == sym and d["timeframe"] == tf]
    got = sorted(d["timestamp"] for d in mine)
    for t in closes_between(start, end, tf):  # every bar closed after the start: exactly one close event
        if got.count(t) != 1:
            problems.append(f"{sym} {tf} {t}: {got.count(t)} close events")
    if len(set(got)) != len(got):
        problems.append(f"{sym} {tf}: repeated close events")
    early = [t for t in got if t < bucket_start(start, tf)]
    if early:
        problems.append(f"{sym} {tf}: close events for history bars {early[:3]}")
    for d in mine:
        ev = Candle(d["timestamp"], d["open"], d["high"], d["low"], d["close"], d["volume"])
        if not same_bar(ev, truth[ev.timestamp]):
            problems.append(f"{sym} {tf} {ev.timestamp}: event {ev} != truth")
    bars = stored(redis_client, EX_ID, sym, tf)
    if not bars or bars[0].timestamp >= bucket_start(start, tf):
        return [*problems, f"{sym} {tf}: no history stored ({len(bars)} bars)"]
    want = [truth[t] for t in sorted(truth) if bars[0].timestamp <= t <= bars[-1].timestamp]
    if len(bars) != len(want) or not all(same_bar(a, b) for a, b in zip(bars, want, strict=False)):
        extra = sorted({c.timestamp for c in bars} ^ {c.timestamp for c in want})[:5]
        problems.append(f"{sym} {tf}: {len(bars)} stored bars differ from the {len(want)} true ones "
                        f"(only on one side: {extra})")
    value = redis_client.get(keys.indicator(EX_ID, sym, tf))
    if value is None:
        return [*problems, f"{sym} {tf}: no MACD-V"]
    ind = orjson.loads(value)
    upto = fill_gaps([c for c in bars if c.timestamp <= ind["timestamp"]], tf)
    frame = pd.DataFrame({"high": [c.high for c in upto], "low": [c.low for c in upto],
                          "close": [c.close for c in upto], "synthetic": [c.synthetic for c in upto]})
    batch = macd_v_frame(frame).iloc[-1]["macd_v"]
    live = ind["macd_v"]
    if (live is None) != bool(pd.isna(batch)) or (
            live is not None and not math.isclose(live, batch, rel_tol=1e-6, abs_tol=1e-6)):
        problems.append(f"{sym} {tf}: MACD-V {live} != batch {batch}")
    return problems
