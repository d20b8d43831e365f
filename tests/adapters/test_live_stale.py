"""One stalled symbol, both live streams against the simulator: with a small stale threshold the
stalled symbol's streams (and only they) are reported stale, resubscribed on the open connection,
their gap filled over REST with the true bars, and reported recovered when its frames return."""

from __future__ import annotations

import pytest

from streaming.adapters.factory import build_adapter
from streaming.sim import ExchangeSimulator
from tests.adapters.live_helpers import Recorder, running, wait_until
from tests.helpers.sim import sim_config

TIMEFRAMES = {"coinbase": ["5m"], "binance": ["5m", "15m"]}
SPEED = 600.0  # a 5m bar every half second of real time
STALE_AFTER_S = 0.5
STALL_S = 4.0  # past the threshold plus either cadence (1 s Coinbase, 2 s Binance), and many bars long


class HealthRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.health: list[tuple[str, str, bool, str]] = []

    def on_stream_health(self, symbol: str, timeframe: str, stale: bool, detail: str) -> None:
        self.health.append((symbol, timeframe, stale, detail))


def final_closes(rec: Recorder, symbol: str, timeframe: str) -> dict[int, tuple]:
    """The last close of each bar: a bar closed on a guess and filled again counts as filled."""
    out = {}
    for u in rec.closes:
        if u.symbol == symbol and u.timeframe == timeframe:
            c = u.candle
            out[c.timestamp] = (c.open, c.high, c.low, c.close, c.volume)
    return out


@pytest.mark.parametrize("ex", ["coinbase", "binance"])
async def test_a_stalled_symbol_is_reported_resubscribed_filled_and_recovers(ex):
    async with ExchangeSimulator(sim_config(symbols=2, seed=5, speed=SPEED, update_interval=0.05)) as sim:
        stalled, other = sim.symbols(ex)
        row = {"id": 1, "name": ex, "ws_url": sim.urls[ex].ws_url, "rest_url": sim.urls[ex].rest_url}
        ad = build_adapter(row, {}, clock_ms=sim.now_ms, stale_after_s=STALE_AFTER_S)
        try:
            rec = HealthRecorder()
            stream = ad.live([stalled, other], TIMEFRAMES[ex], rec)
            async with running(stream):
                await wait_until(lambda: all(final_closes(rec, s, "5m") for s in (stalled, other)), 20,
                                 "first closes")
                opened = sim.stats(ex)["connections"]
                await sim.inject("stall_symbol", exchange=ex, symbol=stalled, seconds=STALL_S)
                await wait_until(lambda: any(h[2] for h in rec.health), 10, "a stale stream")
                await wait_until(lambda: {h[:2] for h in rec.health if h[2]} ==
                                 {(stalled, tf) for tf in TIMEFRAMES[ex]}, 5, "every stream of the symbol stale")
                assert set(stream.stale_streams()) == {(stalled, tf) for tf in TIMEFRAMES[ex]}
                assert all("resubscribing" in h[3] for h in rec.health)
                other_closes = len(final_closes(rec, other, "5m"))
                await wait_until(lambda: len(final_closes(rec, other, "5m")) >= other_closes + 2, 10,
                                 "the other symbol streaming on meanwhile")
                await wait_until(lambda: {h[:2] for h in rec.health if not h[2]} ==
                                 {(stalled, tf) for tf in TIMEFRAMES[ex]}, 20, "every stream recovered")
                assert stream.stale_streams() == []
                stats = stream.stats()
                n = len(TIMEFRAMES[ex])
                assert stats["streams_stale"] == n and stats["streams_recovered"] == n
                assert stats["streams_resubscribes"] >= len(TIMEFRAMES[ex]) and stats["gapfill_requests"] >= 1
                assert sim.stats(ex)["connections"] == opened  # resubscribed on the open connection
                assert not [h for h in rec.health if h[0] == other]
                # the stall's bars came over REST, and every bar is the exchange's own
                await wait_until(lambda: max(final_closes(rec, stalled, "5m")) >= sim.now_ms() - 4 * 300_000, 10,
                                 "the stalled symbol's closes caught up")
            assert [u for u in rec.closes if u.symbol == stalled and u.source == "rest"]
            for sym in (stalled, other):
                for tf in TIMEFRAMES[ex]:
                    got = final_closes(rec, sym, tf)
                    if not got:
                        continue
                    lo, hi = min(got), max(got)
                    want = {c.timestamp: (c.open, c.high, c.low, c.close, c.volume)
                            for c in sim.truth(ex, sym, tf) if lo <= c.timestamp <= hi}
                    assert got == want, f"{sym} {tf}"
            # at most the bar the clock closed before the stall was noticed was closed twice
            assert len({k for k in rec.double_closes() if k[0] == stalled}) <= 1
            assert not [k for k in rec.double_closes() if k[0] == other]
        finally:
            await ad.aclose()
