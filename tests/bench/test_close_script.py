"""bench/bench_close_script.py measures the real close script on real staged closes (not a timed
test: only that its calls store and publish every close, and that each part is counted)."""

from __future__ import annotations

import redis

from bench.bench_close_script import DECODE_ONLY, batches, per_close, pings
from bench.staged import T0
from streaming import keys
from streaming.store import scripts


def test_each_measured_call_publishes_a_new_close_of_every_stream(redis_url):
    r = redis.Redis.from_url(redis_url)
    calls = batches(streams=3, bars=40, rounds=2)  # MACD-V seeded: the alert state moves
    assert len(calls) == 2
    close = per_close(r, scripts.CLOSE_BATCH, calls, 3)
    assert close.script_us > 0
    assert set(close.inside_us) == {"set", "zadd", "zremrangebyscore", "zremrangebyrank", "publish", "hset"}
    # a new bar without alerts: SET GET, ZREMRANGEBYSCORE, ZADD, ZREMRANGEBYRANK, PUBLISH, SET
    # (indicator), HSET (alert state); the first round's HSET finds no hash (the warm-up's bars were
    # staged, never sent) and writes the whole state with a second one: (8 + 7) / 2
    assert close.calls == 7.5
    last_bar = T0 + (40 + 1) * 300_000
    for i in range(3):
        symbol = f"S{i:05d}USDT"
        # the two measured rounds, each new: stored, marker moved, indicator written
        assert r.zcard(keys.candles(2, symbol, "5m")) == 2
        assert int(r.get(keys.closed_marker(2, symbol, "5m"))) == last_bar
        assert r.exists(keys.indicator(2, symbol, "5m"))
    stats = r.info("commandstats")
    assert stats["cmdstat_publish"]["calls"] == 6  # a close event per close, no alert in these bars
    decode = per_close(r, DECODE_ONLY, calls, 3)
    ping = per_close(r, pings(7), calls, 3)
    assert decode.script_us > 0 and decode.calls == 0 and not decode.inside_us
    assert ping.calls == 7 and set(ping.inside_us) == {"ping"}
    r.close()
