"""The audit's repair writer on real Redis: replaces and fills bars, in every existing key of the
stream, keeps TTLs, and never publishes, moves the marker or touches the indicator."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from streaming import keys
from streaming.models import Candle
from streaming.store import BadCandle, CandleStore, StoreLimits
from streaming.store.repair import RepairRefused, repair_candles

T0 = 1_786_309_200_000
M5 = 300_000


def bar(i: int, close: float = 100.0) -> Candle:
    return Candle(T0 + i * M5, 99.5, 101.0, 99.0, close, 3.0 + i)


@pytest.fixture
async def r(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_repair_replaces_and_fills_without_any_event(r, redis_client):
    store = CandleStore(r)
    await store.write_many(1, "BTC-USD", "5m", [bar(0), bar(1, close=99.2), bar(3)])
    redis_client.set(keys.closed_marker(1, "BTC-USD", "5m"), T0 + 3 * M5)
    redis_client.set(keys.indicator(1, "BTC-USD", "5m"), '{"value": 1}')
    pubsub = redis_client.pubsub()
    pubsub.psubscribe("*")
    assert pubsub.get_message(timeout=1)["type"] == "psubscribe"
    changed = await repair_candles(r, 1, "BTC-USD", "5m", [bar(0), bar(1), bar(2)])
    assert changed == [bar(1).timestamp, bar(2).timestamp]  # bar 0 was already right
    assert await store.read(1, "BTC-USD", "5m") == [bar(0), bar(1), bar(2), bar(3)]
    assert redis_client.zcard(keys.candles(1, "BTC-USD", "5m")) == 4  # replaced, never duplicated
    assert redis_client.get(keys.closed_marker(1, "BTC-USD", "5m")) == str(T0 + 3 * M5)
    assert redis_client.get(keys.indicator(1, "BTC-USD", "5m")) == '{"value": 1}'
    assert pubsub.get_message(timeout=0.5) is None
    pubsub.close()
    # idempotent
    assert await repair_candles(r, 1, "BTC-USD", "5m", [bar(1), bar(2)]) == []


async def test_repair_writes_every_existing_key_and_keeps_their_ttl(r, redis_client):
    store = CandleStore(r, StoreLimits(user_ttl_s=5000))
    await store.write_many(2, "FOO-USD", "1h", [bar(0, 99.1)], user_ids=(7, 9))
    redis_client.pexpire(keys.user_candles(9, 2, "FOO-USD", "1h"), 123_000)
    # user 11 holds it too, but its key expired: a repair does not bring it back
    changed = await repair_candles(r, 2, "FOO-USD", "1h", [bar(0)], user_ids=(7, 9, 11))
    assert changed == [bar(0).timestamp]
    for user in (7, 9):
        assert await store.read(2, "FOO-USD", "1h", user_ids=(user,)) == [bar(0)]
    assert 4990_000 < redis_client.pttl(keys.user_candles(7, 2, "FOO-USD", "1h")) <= 5000_000
    assert 120_000 < redis_client.pttl(keys.user_candles(9, 2, "FOO-USD", "1h")) <= 123_000
    assert not redis_client.exists(keys.user_candles(11, 2, "FOO-USD", "1h"))
    assert not redis_client.exists(keys.candles(2, "FOO-USD", "1h"))


async def test_repair_of_a_single_member_key_keeps_its_ttl(r, redis_client):
    """Replacing the only member empties the ZSET for an instant, which would drop the TTL."""
    await CandleStore(r, StoreLimits(user_ttl_s=900)).write_many(1, "X-USD", "5m", [bar(0, 99.1)], user_ids=(3,))
    assert await repair_candles(r, 1, "X-USD", "5m", [bar(0)], user_ids=(3,)) == [bar(0).timestamp]
    assert 800_000 < redis_client.pttl(keys.user_candles(3, 1, "X-USD", "5m")) <= 900_000


async def test_repair_of_a_stream_nothing_stores_writes_nothing(r, redis_client):
    assert await repair_candles(r, 1, "NEW-USD", "5m", [bar(0)]) == []
    assert await repair_candles(r, 1, "NEW-USD", "5m", []) == []
    assert redis_client.keys("*") == []


async def test_repair_refuses_synthetic_or_impossible_bars_before_writing(r, redis_client):
    await CandleStore(r).write_many(1, "BTC-USD", "5m", [bar(0, 99.1), bar(1, 99.1)])
    flat = Candle(T0 + M5, 100.0, 100.0, 100.0, 100.0, 0.0, synthetic=True)
    with pytest.raises(RepairRefused, match="synthetic"):
        await repair_candles(r, 1, "BTC-USD", "5m", [bar(0), flat])
    with pytest.raises(BadCandle, match="inconsistent"):
        await repair_candles(r, 1, "BTC-USD", "5m", [bar(0), Candle(T0 + M5, 100.0, 99.0, 101.0, 100.0, 1.0)])
    assert await CandleStore(r).read(1, "BTC-USD", "5m") == [bar(0, 99.1), bar(1, 99.1)]
