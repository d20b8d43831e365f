"""Gap-free candles through a start whose warm-up spans bar closes, a reload of new symbols and a
kill -9 with a warm restart: a worker subprocess against the simulator behind a slow REST
(0.5 s per answer, one at a time) that also answers 429 three times.

Every bar that closed after a start has exactly one close event, the stored candles equal the
simulator's truth on all five timeframes, and MACD-V equals the batch computation over the
exchange's candles: no flat synthetic bar where the exchange had trades (none at all when every
bucket has trades), one exactly where Coinbase had none."""

from __future__ import annotations

import math
import time

import orjson
import pandas as pd
import pytest
import redis

from streaming import keys
from streaming.control.client import ControlClient
from streaming.gaps import fill_gaps
from streaming.indicators.macd_v_batch import macd_v_frame
from streaming.models import Candle
from streaming.store.codec import decode_candle
from streaming.timeframes import TIMEFRAMES, timeframe_ms
from tests.helpers.sim import sim_clock_env, sim_config
from tests.helpers.slow_rest import SlowRest
from tests.pipeline.helpers import Subscriber
from tests.servers import wait_for
from tests.worker.test_worker_live import set_universe

testing = pytest.importorskip("streaming.sim.testing", reason="the exchange simulator is not there yet")

SPEED = 300.0  # a 5m bar lasts one real second
M5 = 300_000
IDS = {"coinbase": 1, "binance": 2}


def closes_between(lo_ms: int, hi_ms: int, tf: str) -> list[int]:
    """Open times of the `tf` bars that closed in (lo_ms, hi_ms]."""
    size = timeframe_ms(tf)
    first = (lo_ms // size) * size  # closes at first + size > lo_ms
    return [t for t in range(first, hi_ms, size) if lo_ms < t + size <= hi_ms]


def stored(client: redis.Redis, ex_id: int, symbol: str, tf: str) -> list[Candle]:
    return [decode_candle(m) for m in client.zrange(keys.candles(ex_id, symbol, tf), 0, -1)]


def same_bar(a: Candle, b: Candle) -> bool:
    return a.timestamp == b.timestamp and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        for x, y in zip((a.open, a.high, a.low, a.close, a.volume), (b.open, b.high, b.low, b.close, b.volume),
                        strict=True))


@pytest.mark.parametrize("exchange,quiet", [("coinbase", 0.0), ("binance", 0.0), ("coinbase", 0.25)])
def test_no_bar_lost_or_invented_through_start_reload_and_kill_9(exchange, quiet, start_worker, worker_env, redis_url,
                                                                  redis_client):
    """`quiet`: the share of 5m buckets without a trade (Coinbase sends no candle for them)."""
    ex_id = IDS[exchange]
    with testing.running_simulator(sim_config(symbols=3, seed=11, speed=SPEED, gap_probability=quiet)) as sim, \
            SlowRest(sim.urls[exchange].rest_url, delay_s=0.5) as slow:
        syms = sim.symbols(exchange)
        # the reload below is the one that adds the new symbol: the periodic universe check (0.5 s in
        # tests) could otherwise see the new universe first and leave the reload nothing to add
        env = {**worker_env, **sim_clock_env(sim), "LIVERMORE_UNIVERSE_CHECK_S": "86400"}
        for name, urls in sim.urls.items():
            env[f"LIVERMORE_{name.upper()}_WS_URL"] = urls.ws_url
            env[f"LIVERMORE_{name.upper()}_REST_URL"] = slow.url if name == exchange else urls.rest_url
        set_universe(redis_client, syms[:2], ex_id, exchange)
        sub = Subscriber(redis_url, [keys.candle_close_pattern(ex_id)])
        client = ControlClient(redis_client)
        try:
            worker = start_worker(env=env)
            sim.inject("rate_limit", exchange=exchange, count=3, retry_after=1)
            answer = client.send("start", exchange, timeout=120)
            assert answer["status"] == "success", answer
            connected = sim.now_ms()
            start = answer["result"]["warm_up"]["until_ms"]
            cold_requests = answer["result"]["warmup_requests"]
            # the warm-up spanned at least two 5m closes and a 15m close
            assert len(closes_between(start, connected, "5m")) >= 2, (start, connected)
            assert closes_between(start, connected, "15m"), (start, connected)
            assert cold_requests >= 2 * len(TIMEFRAMES)

            # a new symbol through reload-symbols, its warm-up behind the same slow REST
            set_universe(redis_client, syms, ex_id, exchange)
            reload = client.send("reload-symbols", exchange, timeout=30)
            assert reload["status"] == "success" and reload["result"]["added"] == [syms[2]], reload
            added_at = reload["result"]["until_ms"]

            def reload_warmed_up() -> bool:
                # its history is all in (a kill before that leaves a stream cold: the restart would
                # rightly fetch it again); the requests are reported once the warm-up is done
                status = redis_client.hgetall(keys.exchange_status(ex_id))
                return (status.get("warmup_total") == status.get("warmup_done") == str(len(TIMEFRAMES))
                        and status.get("warmup_requests", "") != "")

            wait_for(lambda: reload_warmed_up() and len(closes_between(added_at, sim.now_ms(), "15m")) >= 1
                     and all(redis_client.exists(keys.indicator(ex_id, syms[2], tf)) for tf in TIMEFRAMES)
                     and redis_client.get(keys.closed_marker(ex_id, syms[2], "5m")) is not None
                     and int(redis_client.get(keys.closed_marker(ex_id, syms[2], "5m"))) >= added_at,
                     timeout=60, message="the added symbol streaming live")

            # kill -9, some bars close while nothing runs (at least two 5m closes and a 15m close on the
            # simulator's clock), then a warm restart
            worker.proc.kill()
            worker.proc.wait()
            killed_at = sim.now_ms()
            wait_for(lambda: len(closes_between(killed_at, sim.now_ms(), "5m")) >= 2
                     and closes_between(killed_at, sim.now_ms(), "15m"), timeout=30, interval=0.05,
                     message="bars closing while no worker runs")
            restarted = start_worker(env=env)
            # addressed to the new worker: sent to "*", the client would also wait for the killed worker's
            # answer until its heartbeat goes stale (up to 15 s), long after the new one has answered
            again = client.send("start", exchange, timeout=60, target=restarted.worker_id)
            assert again["status"] == "success", again
            restart = again["result"]["warm_up"]["until_ms"]
            assert again["result"]["warmup_requests"] == 0  # the cache is fresh: the stream fills the rest
            wait_for(lambda: len(closes_between(restart, sim.now_ms(), "15m")) >= 1
                     and len(closes_between(restart, sim.now_ms(), "5m")) >= 4, timeout=60,
                     message="bars closing after the restart")
            end = sim.now_ms() - 3 * M5  # bars closed by then have been published (Coinbase: by the clock)
            time.sleep(1.0)
            assert restarted.terminate() == 0  # what it received is stored and published before it exits
            sub.settle(redis_client)
            events = [d for c, d in sub.messages if c.startswith("channel:exchange:")]
            problems: list[str] = []
            for sym in syms:
                first = start if sym != syms[2] else added_at
                for tf in TIMEFRAMES:
                    truth = {c.timestamp: c for c in sim.truth(exchange, sym, tf)}
                    got = sorted(d["timestamp"] for d in events if d["symbol"] == sym and d["timeframe"] == tf)
                    # every bar that closed after its symbol's start: exactly one close event, with true values
                    for t in closes_between(first, end, tf):
                        n, owed = got.count(t), int(t in truth)  # a bucket without trades has no bar
                        if n != owed:
                            problems.append(f"{sym} {tf} {t}: {n} close events, {owed} owed")
                    if len(set(got)) != len(got):
                        problems.append(f"{sym} {tf}: repeated close events")
                    for d in events:
                        if d["symbol"] == sym and d["timeframe"] == tf:
                            ev = Candle(d["timestamp"], d["open"], d["high"], d["low"], d["close"], d["volume"])
                            if not same_bar(ev, truth[ev.timestamp]):
                                problems.append(f"{sym} {tf} {ev.timestamp}: event {ev} != truth")
                    # the store equals the truth, without a hole
                    bars = stored(redis_client, ex_id, sym, tf)
                    if not bars:
                        problems.append(f"{sym} {tf}: nothing stored")
                        continue
                    want = [truth[t] for t in sorted(truth) if bars[0].timestamp <= t <= bars[-1].timestamp]
                    if len(bars) != len(want) or not all(same_bar(a, b) for a, b in zip(bars, want, strict=False)):
                        extra = sorted({c.timestamp for c in bars} ^ {c.timestamp for c in want})[:5]
                        wrong = [(a.timestamp, a, truth.get(a.timestamp)) for a in bars
                                 if a.timestamp in truth and not same_bar(a, truth[a.timestamp])][:3]
                        problems.append(f"{sym} {tf}: {len(bars)} stored bars differ from the {len(want)} true ones "
                                        f"(only on one side: {extra}; different: {wrong}; truth newest "
                                        f"{max(truth)}, now {sim.now_ms()})")
                    # MACD-V equals the batch computation over the exchange's bars, with a flat
                    # synthetic bar exactly where the exchange had no trades (none at all if quiet == 0)
                    value = redis_client.get(keys.indicator(ex_id, sym, tf))
                    if value is None:
                        problems.append(f"{sym} {tf}: no MACD-V")
                        continue
                    ind = orjson.loads(value)
                    upto = fill_gaps([c for c in bars if c.timestamp <= ind["timestamp"]], tf)
                    frame = pd.DataFrame({"high": [c.high for c in upto], "low": [c.low for c in upto],
                                          "close": [c.close for c in upto],
                                          "synthetic": [c.synthetic for c in upto]})
                    ref = macd_v_frame(frame).iloc[-1]
                    if quiet == 0 and ind["gap_ratio"] != 0:
                        problems.append(f"{sym} {tf}: gap_ratio {ind['gap_ratio']} (a synthetic bar)")
                    if not math.isclose(ind["gap_ratio"], ref["gap_ratio"], abs_tol=1e-9):
                        problems.append(f"{sym} {tf}: gap_ratio {ind['gap_ratio']} != batch {ref['gap_ratio']}")
                    batch = ref["macd_v"]
                    live = ind["macd_v"]
                    if (live is None) != bool(pd.isna(batch)) or (
                            live is not None and not math.isclose(live, batch, rel_tol=1e-6, abs_tol=1e-6)):
                        problems.append(f"{sym} {tf}: MACD-V {live} != batch {batch}")
            assert problems == [], "\n".join(problems[:40])
        finally:
            sub.close()
