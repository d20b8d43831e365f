"""The pipeline asks which timeframes are native (the adapter's declared capability, or the
native_timeframes keyword) and builds the others from 5m; the exchange's name decides nothing."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from streaming import keys
from streaming.adapters.factory import build_adapter
from streaming.db.seed import EXCHANGES
from streaming.models import Candle
from streaming.pipeline import CandlePipeline, PipelineConfig
from streaming.timeframes import UnknownTimeframe
from tests.pipeline.helpers import make_pipeline, updates

AGGREGATED = ("15m", "1h", "4h", "1d")


async def test_the_name_decides_nothing_the_declared_capability_does(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    coinbase = build_adapter(EXCHANGES[0])
    try:
        assert CandlePipeline(client, 1, "coinbase", symbol_pools=["BTC-USD"]).aggregated == ()
        assert CandlePipeline(client, 9, "kraken", symbol_pools=["XBT-USD"],
                              native_timeframes=("5m",)).aggregated == AGGREGATED
        coinbase.native_timeframes = frozenset({"5m"})  # what the adapter declares
        off = PipelineConfig(reconcile=False)
        assert CandlePipeline(client, 1, "any name", symbol_pools=["BTC-USD"], adapter=coinbase,
                              config=off).aggregated == AGGREGATED
        # an explicit keyword wins over the adapter; PipelineConfig.aggregate overrides both
        assert CandlePipeline(client, 1, "coinbase", symbol_pools=["BTC-USD"], adapter=coinbase, config=off,
                              native_timeframes=("5m", "15m", "1h", "4h", "1d")).aggregated == ()
        assert CandlePipeline(client, 1, "coinbase", symbol_pools=["BTC-USD"], native_timeframes=("5m",),
                              config=PipelineConfig(aggregate=False)).aggregated == ()
        with pytest.raises(UnknownTimeframe):
            CandlePipeline(client, 1, "coinbase", symbol_pools=["BTC-USD"], native_timeframes=("5m", "2m"))
    finally:
        await coinbase.aclose()
        await client.aclose()


async def test_a_new_exchange_with_only_5m_gets_its_larger_timeframes_built(redis_url, redis_client):
    t0 = 1_700_000_100_000 - 1_700_000_100_000 % 900_000
    five = [Candle(t0 + i * 300_000, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, 2.0) for i in range(4)]
    r, p = await make_pipeline(redis_url, ["XBT-USD"], exchange_id=9, exchange="kraken",
                               timeframes=("5m", "15m"), native_timeframes=("5m",))
    try:
        published = await p.process(updates(five, "XBT-USD", exchange="kraken"))
        stats = p.stats()
    finally:
        await r.aclose()
    assert published == 5 and stats["aggregated"] == 1
    bar = json.loads(redis_client.zrange(keys.candles(9, "XBT-USD", "15m"), 0, -1)[0])
    assert bar == {"timestamp": t0, "open": 10.0, "high": 13.0, "low": 9.0, "close": 12.5, "volume": 6.0}
