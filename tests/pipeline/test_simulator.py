"""The Binance adapter driven by the local exchange simulator into the pipeline: stored closed
candles equal the simulator's truth, close events exactly once, warm-up then live."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from streaming import keys
from streaming.adapters.factory import build_adapter
from streaming.models import Candle
from streaming.pipeline import CandlePipeline, PipelineConfig
from tests.helpers.sim import sim_config
from tests.pipeline.helpers import Subscriber

sim_testing = pytest.importorskip("streaming.sim.testing")

EX = 2


async def test_binance_from_simulator_matches_truth(redis_url, redis_client):
    cfg = sim_config(symbols=2, speed=600.0, update_interval=0.05, history_days=2, include_recorded_products=False)
    with sim_testing.running_simulator(cfg) as sim:
        syms = sim.symbols("binance")[:2]
        urls = sim.urls["binance"]
        sub = Subscriber(redis_url, [keys.candle_close_pattern(EX)])

        adapter = build_adapter({"id": EX, "name": "binance", **urls.as_dict()}, env={}, clock_ms=sim.now_ms)
        r = aioredis.Redis.from_url(redis_url)
        p = CandlePipeline(r, EX, "binance", symbol_pools=syms, timeframes=("5m",),
                           config=PipelineConfig(warmup_candles=300, clock_ms=sim.now_ms), adapter=adapter)
        report = await p.warm_up(adapter)
        stream = adapter.live(syms, ["5m"], p.listener)
        tasks = [asyncio.create_task(stream.run()), asyncio.create_task(p.run())]
        await asyncio.sleep(4.0)  # ~40 simulated minutes: several live 5m closes per symbol
        await stream.close()
        await p.drain()
        await p.close()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
        await adapter.aclose()
        stats = p.stats()
        await r.aclose()
        sub.settle(redis_client)
        sub.close()
        assert report.ok and report.done == 2
        assert stats["published"] >= 2 * 3
        for sym in syms:
            truth = {c.timestamp: c for c in sim.truth("binance", sym, "5m")}
            stored = [Candle(**json.loads(m)) for m in redis_client.zrange(keys.candles(EX, sym, "5m"), 0, -1)]
            assert len(stored) >= 300
            for c in stored:
                t = truth[c.timestamp]
                assert (c.open, c.high, c.low, c.close) == pytest.approx((t.open, t.high, t.low, t.close), rel=1e-9)
                assert c.volume == pytest.approx(t.volume, rel=1e-6)
            events = [d["timestamp"] for ch, d in sub.messages if ch == keys.candle_close_channel(EX, sym, "5m")]
            assert events and len(events) == len(set(events)) and events == sorted(events)
            # the events are exactly the newest stored bars: the backfilled history stayed silent
            assert events == [c.timestamp for c in stored[-len(events):]] and len(stored) > len(events)
