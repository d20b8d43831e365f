"""A close marker (and stored bars) from the future, left by a bad frame before timestamps were
bounded, is repaired when the stream is loaded: the stream publishes real closes again."""

from __future__ import annotations

import json

from streaming import keys
from streaming.models import Candle
from streaming.store.codec import encode_candle
from tests.pipeline.helpers import Subscriber, load_candles, make_pipeline, updates

EX = 2
Y2099 = 4_102_358_400_000  # 2099-12-31T00:00:00Z, a 5m open time


async def test_marker_from_the_future_is_repaired_when_the_stream_loads(redis_url, redis_client, fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:30]
    now = cs[-1].timestamp + 300_000  # the trusted clock: just after the last bar closed
    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",), clock_ms=lambda: now)
    await p.process(updates(cs[:20], "ETHBTC"))
    await r.aclose()
    # what a closed kline dated 2099 did: stored, and the marker moved there
    bad = Candle(Y2099, 1.0, 1.0, 1.0, 1.0, 1.0)
    redis_client.zadd(keys.candles(EX, "ETHBTC", "5m"), {encode_candle(bad): Y2099})
    redis_client.set(keys.closed_marker(EX, "ETHBTC", "5m"), str(Y2099))

    sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])
    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",), clock_ms=lambda: now)  # a restart
    published = await p.process(updates(cs[20:], "ETHBTC"))
    stats = p.stats()
    await r.aclose()
    sub.settle(redis_client)
    sub.close()
    assert published == 10
    assert [d["timestamp"] for _, d in sub.messages] == [c.timestamp for c in cs[20:]]
    assert stats["future_markers_repaired"] == 1 and stats["future_bars_dropped"] == 1
    assert int(redis_client.get(keys.closed_marker(EX, "ETHBTC", "5m"))) == cs[-1].timestamp
    stored = [json.loads(m)["timestamp"] for m in redis_client.zrange(keys.candles(EX, "ETHBTC", "5m"), 0, -1)]
    assert stored == [c.timestamp for c in cs]


async def test_warm_up_repairs_a_marker_from_the_future_before_reading_the_store(redis_url, redis_client,
                                                                                  fixtures_dir):
    cs = load_candles(fixtures_dir, "ETH_BTC-5m.csv")[:5]
    now = cs[-1].timestamp + 300_000
    redis_client.set(keys.closed_marker(EX, "ETHBTC", "5m"), str(Y2099))
    r, p = await make_pipeline(redis_url, ["ETHBTC"], timeframes=("5m",), clock_ms=lambda: now)
    try:
        tail = await p.states.stored_tail("ETHBTC", "5m")
        stats = p.stats()
    finally:
        await r.aclose()
    assert tail.newest is None and stats["future_markers_repaired"] == 1
    assert redis_client.get(keys.closed_marker(EX, "ETHBTC", "5m")) is None
