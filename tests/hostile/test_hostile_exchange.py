"""A hostile exchange against a REAL worker process: frames nested 1,000 deep, a kline dated 2099,
a candle whose open lies outside [low, high], volumes of 1e308, interleaved with the simulator's
real Binance stream through a relay on 127.0.0.1. Afterwards the stream still publishes the true
closes (checked against the simulator's truth), nothing invalid is stored (every candle key read
back), no closed marker is in the future, and `livermore status` is truthful: connected while
frames flow, `disconnected`/`error` with the cause while the exchange is gone, connected again
when it is back."""

from __future__ import annotations

import json
import math
import time

import orjson
import pytest

from streaming import keys
from streaming.control.client import ControlClient
from streaming.timeframes import TIMEFRAME_MS, TIMEFRAMES
from tests.helpers.commands import run_livermore
from tests.helpers.sim import sim_clock_env, sim_config
from tests.hostile.relay import HostileRelay
from tests.servers import wait_for

testing = pytest.importorskip("streaming.sim.testing", reason="the exchange simulator is not there yet")

SYM = "SIM1USDT"
BINANCE = 2
YEAR_2099_MS = 4_102_444_500_000  # 2099-12-31T23:55:00Z, a 5m open time


@pytest.fixture(scope="module")
def sim():
    with testing.running_simulator(sim_config(symbols=2, seed=5, speed=60)) as running:
        assert SYM in running.symbols("binance")
        yield running


def kline(tf: str, t: int, o: str, h: str, low: str, c: str, v: str, closed: bool = True) -> str:
    step = TIMEFRAME_MS[tf]
    k = {"t": t, "T": t + step - 1, "s": SYM, "i": tf, "o": o, "c": c, "h": h, "l": low, "v": v, "x": closed}
    return json.dumps({"stream": f"{SYM.lower()}@kline_{tf}", "data": {"e": "kline", "E": t + step, "s": SYM, "k": k}})


def hostile_frames(now_ms: int) -> list[str]:
    bucket = now_ms - now_ms % TIMEFRAME_MS["5m"]
    return [
        "[" * 1000 + "1" + "]" * 1000,  # ~2 KB nested 1,000 deep
        '{"stream":"x","data":' + '{"k":' * 1000 + "1" + "}" * 1000 + "}",
        kline("5m", YEAR_2099_MS, "1.5", "1.6", "1.4", "1.5", "10"),  # a close from the future
        kline("5m", bucket, "900000", "2.0", "1.0", "1.5", "10"),  # open outside [low, high]
        kline("5m", bucket, "1.5", "1.5", "1.5", "1.5", "1e308"),  # a volume no market has
        kline("1h", bucket - bucket % TIMEFRAME_MS["1h"], "1.5", "1.6", "1.4", "1.7", "1e308"),
    ]


def status_row(env: dict[str, str]) -> dict:
    out = run_livermore(["status", "--json"], env)
    assert out.returncode == 0, out.stderr
    return next(e for e in json.loads(out.stdout)["exchanges"] if e["name"] == "binance")


def check_stored(redis_client, now_ms: int) -> int:
    """Every stored candle of SYM is finite, consistent and not from the future; markers too."""
    seen = 0
    for tf in TIMEFRAMES:
        for member, score in redis_client.zrange(keys.candles(BINANCE, SYM, tf), 0, -1, withscores=True):
            bar = orjson.loads(member)
            values = [bar[f] for f in ("open", "high", "low", "close", "volume")]
            assert all(isinstance(x, int | float) and math.isfinite(x) for x in values), (tf, bar)
            assert bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"], bar
            assert 0 <= bar["volume"] < 1e15 and bar["timestamp"] == int(score), bar
            assert bar["timestamp"] <= now_ms, (tf, bar)
            seen += 1
        marker = redis_client.get(keys.closed_marker(BINANCE, SYM, tf))
        assert marker is None or int(marker) <= now_ms, (tf, marker)
        indicator = redis_client.get(keys.indicator(BINANCE, SYM, tf))
        if indicator:
            for name, value in orjson.loads(indicator).items():
                assert not isinstance(value, float) or math.isfinite(value), (tf, name, value)
    return seen


def closes_after(pubsub, since_ms: int, count: int, timeout: float) -> list[dict]:
    events: list[dict] = []

    def collect():
        message = pubsub.get_message(timeout=0.2)
        if message and message["type"] == "message":
            event = orjson.loads(message["data"])
            if event["timestamp"] >= since_ms:
                events.append(event)
        return len(events) >= count

    wait_for(collect, timeout=timeout, interval=0, message=f"{count} closes of {SYM} 5m")
    return events


def assert_true_closes(sim, events: list[dict]) -> None:
    truth = {c.timestamp: c for c in sim.truth("binance", SYM, "5m")}
    for event in events:
        real = truth[event["timestamp"]]
        got = (event["open"], event["high"], event["low"], event["close"], event["volume"])
        assert got == pytest.approx((real.open, real.high, real.low, real.close, real.volume), rel=1e-9), event


def test_hostile_frames_neither_silence_nor_corrupt_a_worker_and_status_stays_true(
        sim, start_worker, worker_env, redis_client):
    with HostileRelay(sim.urls["binance"].ws_url) as relay:
        env = {**worker_env, **sim_clock_env(sim), "LIVERMORE_BINANCE_WS_URL": relay.url,
               "LIVERMORE_BINANCE_REST_URL": sim.urls["binance"].rest_url}
        worker = start_worker(env=env)
        started = run_livermore(["start", "binance", "--symbols", f"{SYM},SIM2USDT"], env, timeout=120)
        assert started.returncode == 0, (started.stdout, worker.log()[-3000:])
        pubsub = redis_client.pubsub()
        pubsub.subscribe(keys.candle_close_channel(BINANCE, SYM, "5m"))

        # the poison, several rounds, between the real frames
        injected_at = sim.now_ms()
        for _ in range(5):
            assert relay.inject(*hostile_frames(sim.now_ms())) >= 1
            time.sleep(0.3)

        # still publishing, and only the truth: three closes after the poison
        events = closes_after(pubsub, injected_at - injected_at % TIMEFRAME_MS["5m"], 3, timeout=60)
        assert_true_closes(sim, events)
        assert check_stored(redis_client, sim.now_ms()) > 0

        row = status_row(env)
        assert row["connection_state"] == "connected" and not row["last_error"], row
        shown = run_livermore(["status"], env).stdout
        assert "binance (Binance): connected since" in shown and "last frame" in shown
        described = ControlClient(redis_client).send("status", "binance", timeout=10)["result"]["exchanges"]["binance"]
        skipped = described["stream"]["skipped"]
        assert skipped.get("too_deep", 0) >= 10 and skipped.get("bad_timestamp", 0) >= 5, skipped
        assert described["stream"]["skipped_total"] >= 30 - 1, described["stream"]  # every poison frame counted
        assert relay.connections == 1  # nothing above made the worker reconnect
        assert "Traceback" not in worker.log()

        # the exchange goes away: said within seconds, with the cause
        relay.take_down()
        row = wait_for(lambda: (r := status_row(env))["connection_state"] != "connected" and "HTTP 503" in
                       (r["last_error"] or "") and r, timeout=20, message="status to say the exchange answers 503")
        assert row["connection_state"] in ("disconnected", "connecting", "error"), row
        said = " ".join(run_livermore(["status"], env).stdout.split())
        assert "binance answers HTTP 503" in said

        # and back: connected again, true closes again
        relay.bring_back()
        back_at = sim.now_ms()
        wait_for(lambda: status_row(env)["connection_state"] == "connected", timeout=60,
                 message="binance connected again")
        events = closes_after(pubsub, back_at - back_at % TIMEFRAME_MS["5m"] + TIMEFRAME_MS["5m"], 1, timeout=60)
        assert_true_closes(sim, events)
        assert check_stored(redis_client, sim.now_ms()) > 0
        pubsub.close()
        assert worker.terminate() == 0
