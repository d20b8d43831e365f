"""bench/bench_close_script.py measures the real close script on real staged closes (not a timed
test: only that its calls store and publish every close, and that each part is counted)."""

from __future__ import annotations

import redis

from bench.bench_close_script import DECODE_ONLY, SEVEN_PINGS, T0, batches, per_close_us
from streaming import keys
from streaming.store import scripts


def test_each_measured_call_publishes_a_new_close_of_every_stream(redis_url):
    r = redis.Redis.from_url(redis_url)
    calls = batches(streams=3, bars=40, rounds=2)  # MACD-V seeded: the alert state moves
    assert len(calls) == 2
    whole, inside = per_close_us(r, scripts.CLOSE_BATCH, calls, 3)
    assert whole > 0 and {"set", "zadd", "zremrangebyscore", "zremrangebyrank", "publish", "hset"} <= set(inside)
    last_bar = T0 + (40 + 1) * 300_000
    for i in range(3):
        symbol = f"S{i:05d}USDT"
        # the two measured rounds, each new: stored, marker moved, indicator written
        assert r.zcard(keys.candles(2, symbol, "5m")) == 2
        assert int(r.get(keys.closed_marker(2, symbol, "5m"))) == last_bar
        assert r.exists(keys.indicator(2, symbol, "5m"))
    stats = r.info("commandstats")
    assert stats["cmdstat_publish"]["calls"] == 6  # a close event per close, no alert in these bars
    decode, none_inside = per_close_us(r, DECODE_ONLY, calls, 3)
    _, pings_inside = per_close_us(r, SEVEN_PINGS, calls, 3)
    assert decode > 0 and not none_inside and set(pings_inside) == {"ping"}
    r.close()
