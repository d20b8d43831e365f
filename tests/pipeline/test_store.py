"""Candle store: idempotent replace, bounded length, TTL of user-scoped keys, fallback read."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from streaming import keys
from streaming.models import Candle
from streaming.store import BadCandle, CandleStore, StoreLimits, decode_candle, encode_candle

C1 = Candle(1_700_000_100_000 - 1_700_000_100_000 % 300_000, 1.0, 2.0, 0.5, 1.5, 10.0)


def test_codec_roundtrip_and_member_format():
    raw = encode_candle(C1)
    assert raw.startswith(b'{"timestamp":')
    assert decode_candle(raw) == C1
    assert set(__import__("json").loads(raw)) == {"timestamp", "open", "high", "low", "close", "volume"}


async def test_write_same_open_time_replaces_never_duplicates(redis_url, redis_client):
    r = aioredis.Redis.from_url(redis_url)
    store = CandleStore(r)
    assert await store.write_closed(1, "BTC-USD", "5m", C1) is True
    assert await store.write_closed(1, "BTC-USD", "5m", C1) is False  # identical: no change
    changed = Candle(C1.timestamp, 1.0, 3.0, 0.5, 2.5, 12.0)
    assert await store.write_closed(1, "BTC-USD", "5m", changed) is True
    got = await store.read(1, "BTC-USD", "5m", 10)
    await r.aclose()
    assert got == [Candle(C1.timestamp, 1.0, 3.0, 0.5, 2.5, 12.0)]
    key = keys.candles(1, "BTC-USD", "5m")
    assert redis_client.zcard(key) == 1
    assert redis_client.ttl(key) == -1  # shared keys do not expire


async def test_length_is_bounded_to_the_newest(redis_url, redis_client):
    r = aioredis.Redis.from_url(redis_url)
    store = CandleStore(r, StoreLimits(max_candles=50))
    cs = [Candle(C1.timestamp + i * 300_000, 1, 2, 0.5, 1.5, 1) for i in range(120)]
    await store.write_many(1, "ETH-USD", "5m", cs[:60])
    await store.write_many(1, "ETH-USD", "5m", cs[60:])
    got = await store.read(1, "ETH-USD", "5m", 1000)
    await r.aclose()
    assert [c.timestamp for c in got] == [c.timestamp for c in cs[70:]]
    assert redis_client.zcard(keys.candles(1, "ETH-USD", "5m")) == 50


async def test_user_scoped_ttl_refreshed_and_fallback_read(redis_url, redis_client):
    r = aioredis.Redis.from_url(redis_url)
    store = CandleStore(r, StoreLimits(user_ttl_s=3600))
    await store.write_closed(1, "FOO-USD", "1h", C1, user_id=7)
    ukey = keys.user_candles(7, 1, "FOO-USD", "1h")
    await r.expire(ukey, 10)
    await store.write_closed(1, "FOO-USD", "1h", Candle(C1.timestamp + 3_600_000, 1, 2, 0.5, 1.5, 1), user_id=7)
    ttl = await r.ttl(ukey)
    no_users = await store.read(1, "FOO-USD", "1h", 10)
    fallback = await store.read(1, "FOO-USD", "1h", 10, user_ids=[3, 7])
    await store.write_closed(1, "FOO-USD", "1h", C1)  # a shared copy now exists: it wins
    shared = await store.read(1, "FOO-USD", "1h", 10, user_ids=[7])
    await r.aclose()
    assert 3500 < ttl <= 3600
    assert no_users == []
    assert [c.timestamp for c in fallback] == [C1.timestamp, C1.timestamp + 3_600_000]
    assert shared == [C1]
    assert not redis_client.exists(keys.candles(1, "FOO-USD", "5m"))


@pytest.mark.parametrize("bad", [
    Candle(C1.timestamp, float("nan"), 2, 0.5, 1.5, 1),
    Candle(C1.timestamp, 1, float("inf"), 0.5, 1.5, 1),
    Candle(C1.timestamp, 1, 0.4, 0.5, 1.5, 1),  # low > high
    Candle(C1.timestamp, 1, 2, 0.5, 1.5, -1),
])
async def test_bad_candles_are_refused_and_store_untouched(redis_url, redis_client, bad):
    r = aioredis.Redis.from_url(redis_url)
    try:
        with pytest.raises(BadCandle):
            await CandleStore(r).write_closed(1, "BTC-USD", "5m", bad)
    finally:
        await r.aclose()
    assert redis_client.zcard(keys.candles(1, "BTC-USD", "5m")) == 0


def test_store_limits_validation():
    with pytest.raises(ValueError, match="max_candles"):
        StoreLimits(max_candles=0)
    with pytest.raises(ValueError, match="user_ttl_s"):
        StoreLimits(user_ttl_s=-5)
