"""StreamState keeps MACD-V and the last candle packed: what goes in comes out exactly, and a
stream advanced through the packed state reads as one advanced through plain objects."""

from __future__ import annotations

import random

from streaming.gaps import synthetic_between
from streaming.indicators import MacdV
from streaming.models import Candle
from streaming.pipeline.state import StreamState, rebuild

M5 = 300_000
T0 = 1_700_000_100_000 - 1_700_000_100_000 % M5


def walk(n: int, seed: int, start: int = T0) -> list[Candle]:
    rng = random.Random(seed)
    out, price = [], 100.0
    for i in range(n):
        price *= 1 + rng.uniform(-0.02, 0.02)
        hi, lo = price * (1 + rng.random() / 50), price * (1 - rng.random() / 50)
        out.append(Candle(start + i * M5, price, hi, lo, rng.uniform(lo, hi), rng.random() * 1e3, i % 11 == 5))
    return out


def test_macd_v_packs_and_unpacks_exactly_at_every_stage_of_its_seeding():
    m = MacdV()
    for c in [Candle(T0, 1.0, 1.0, 1.0, 1.0, 0.0), *walk(80, 1)]:  # a flat first bar: ATR 0, nulls
        assert MacdV.from_packed(m.packed()).to_dict() == m.to_dict()
        m.update(c.high, c.low, c.close, c.synthetic)
    assert MacdV.from_packed(m.packed()).to_dict() == m.to_dict()
    values = list(m.packed())
    values[1] = -0.0  # the fast EMA: the sign of a zero survives a stream state's packing
    assert str(StreamState(MacdV.from_packed(values)).macd.fast) == "-0.0"


def test_advancing_the_packed_state_matches_plain_objects_gaps_included():
    candles = walk(120, 2)
    candles = candles[:30] + candles[33:90] + candles[91:]  # two gaps: synthetic bars fill them
    state, oracle, last = StreamState(), MacdV(), None
    for c in candles:
        if last is not None:
            for f in synthetic_between(last, c.timestamp, "5m"):
                oracle.update(f.high, f.low, f.close, True)
        assert state.advance(c, "5m") == oracle.update(c.high, c.low, c.close, c.synthetic)
        last = c
        assert state.last == c and state.last_ts is c.timestamp
        assert state.macd.to_dict() == oracle.to_dict()
    assert rebuild(candles, "5m").macd.to_dict() == oracle.to_dict()


def test_assigning_macd_or_last_replaces_only_that_part():
    c = walk(1, 3)[0]
    m = MacdV()
    m.update(c.high, c.low, c.close)
    state = StreamState()
    assert state.last is None and state.last_ts is None and state.macd.to_dict() == MacdV().to_dict()
    state.last = c
    assert state.last == c and state.macd.to_dict() == MacdV().to_dict()
    state.macd = m
    assert state.last == c and state.macd.to_dict() == m.to_dict()
    state.last = None
    assert state.last is None and state.macd.to_dict() == m.to_dict()
