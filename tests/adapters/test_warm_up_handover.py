"""The handover from the REST warm-up to the live stream, for both adapters against the simulator:
frames held while the warm-up runs, then every bar after the warm-up's newest one closed exactly
once from the exchange (REST for the stretch in between, then the held and later frames)."""

from __future__ import annotations

import asyncio

import pytest

from streaming.adapters.factory import build_adapter
from streaming.sim import ExchangeSimulator
from tests.adapters.live_helpers import Recorder, assert_matches_truth, running, wait_until
from tests.helpers.sim import sim_config

SPEED = {"coinbase": 600.0, "binance": 1200.0}  # a 5m bucket lasts 0.5 s / 0.25 s of real time
TIMEFRAMES = {"coinbase": ["5m"], "binance": ["5m", "15m"]}
OPTIONS = {"coinbase": {"grace_ms": 120_000}, "binance": {}}


def adapter_for(ex: str, sim: ExchangeSimulator):
    row = {"id": 1, "name": ex, "ws_url": sim.urls[ex].ws_url, "rest_url": sim.urls[ex].rest_url, "is_active": True}
    return build_adapter(row, {}, clock_ms=sim.now_ms, **OPTIONS[ex])


@pytest.mark.parametrize("ex", ["coinbase", "binance"])
async def test_held_frames_wait_for_the_warm_up_and_the_bars_in_between_come_from_rest(ex):
    async with ExchangeSimulator(sim_config(symbols=2, seed=7, speed=SPEED[ex], update_interval=0.05)) as sim:
        ad = adapter_for(ex, sim)
        try:
            rec = Recorder()
            syms = sim.symbols(ex)
            tfs = TIMEFRAMES[ex]
            stream = ad.live(syms, tfs, rec)
            stream.hold_for_warm_up(syms)
            async with running(stream):
                # the "warm-up" runs: four 5m bars close while every frame is held
                await wait_until(lambda: stream.stats().get("frames", 0) > 0, 10, "frames")
                started = sim.now_ms()
                await asyncio.sleep(4 * 300_000 / SPEED[ex] / 1000 * 1.0 + 0.3)
                assert rec.closes == [], "a held frame reached the listener"
                # history stored up to a bar that closed before the stream opened
                newest = {(s, tf): [c for c in sim.truth(ex, s, tf) if c.timestamp + 300_000 <= started][-2].timestamp
                          for s in syms for tf in tfs}
                for (s, tf), ts in newest.items():
                    stream.warmed_up(s, tf, ts)
                await wait_until(lambda: all(sum(1 for c in rec.closed(s, "5m") if c.timestamp > newest[(s, "5m")])
                                             >= 8 for s in syms), 20, "closes after the handover")
            for s in syms:
                for tf in tfs:
                    got = rec.closed(s, tf)
                    assert got and got[0].timestamp == newest[(s, tf)] + (300_000 if tf == "5m" else 900_000), \
                        "the first close is the bar right after the warm-up's newest"
                    assert_matches_truth(rec, lambda a, b: sim.truth(ex, a, b), s, tf)
            assert rec.double_closes() == []
            sources = {u.source for u in rec.closes}
            assert sources == {"rest", "websocket"}  # the stretch in between from REST, then live
            assert stream.stats()["gapfill_requests"] >= len(syms)
        finally:
            await ad.aclose()
