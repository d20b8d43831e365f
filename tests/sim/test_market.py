"""The pure core: deterministic bars, exact aggregation, forming bars, faults validation, limiter."""

from __future__ import annotations

import itertools
import math

import pytest

from streaming.sim import SimConfig, SimConfigError
from streaming.sim.clock import SimClock
from streaming.sim.faults import FaultError, corrupt_binance, corrupt_coinbase, validate
from streaming.sim.formats import bn_kline, cb_frame, cb_number, cb_timestamp
from streaming.sim.forming import partial
from streaming.sim.limits import WeightLimiter
from streaming.sim.market import Market, UnknownSimSymbol
from streaming.sim.series import FIVE_MIN_MS, Bar

START = 1_786_309_548_000


def market(seed=7, gap=0.2, start=START, **kw) -> Market:
    cfg = SimConfig(symbols=2, seed=seed, gap_probability=gap, start_ms=start, recordings=None, **kw)
    return Market(cfg, SimClock(start, 1.0, monotonic=lambda: 0.0))


def test_same_seed_same_bars_other_seed_other_bars():
    a, b, c = market(), market(), market(seed=8)
    ta = a.truth("coinbase", "SIM1-USD", "5m")
    assert ta == b.truth("coinbase", "SIM1-USD", "5m")
    assert ta != c.truth("coinbase", "SIM1-USD", "5m")
    assert a.truth("binance", "SIM2USDT", "1d") == b.truth("binance", "SIM2USDT", "1d")


def test_bars_do_not_depend_on_the_order_they_are_asked_for():
    a, b = market(), market()
    late = START + 3 * 86_400_000
    a.truth("binance", "SIM1USDT", "1h", now_ms=late)
    b_truth = b.truth("binance", "SIM1USDT", "5m", now_ms=late)
    assert a.truth("binance", "SIM1USDT", "5m", now_ms=late) == b_truth


def test_history_is_deep_enough_for_daily_warm_up():
    m = market()
    for ex, sym in (("coinbase", "SIM1-USD"), ("binance", "SIM1USDT"), ("binance_us", "SIM1USD")):
        assert len(m.truth(ex, sym, "1d")) >= 300
        assert len(m.truth(ex, sym, "5m")) >= 300


@pytest.mark.parametrize("tf,k", [("15m", 3), ("1h", 12), ("4h", 48), ("1d", 288)])
@pytest.mark.parametrize("exchange,symbol", [("coinbase", "SIM1-USD"), ("binance", "SIM2USDT")])
def test_higher_timeframes_are_exact_aggregates_of_5m(exchange, symbol, tf, k):
    m = market()
    five = m.truth(exchange, symbol, "5m")
    groups: dict[int, list] = {}
    step = k * FIVE_MIN_MS
    for c in five:
        groups.setdefault(c.timestamp - c.timestamp % step, []).append(c)
    higher = m.truth(exchange, symbol, tf)
    assert higher
    for c in higher:
        g = groups[c.timestamp]
        assert (c.open, c.high, c.low, c.close) == (g[0].open, max(x.high for x in g), min(x.low for x in g),
                                                    g[-1].close)
        assert c.volume == sum(x.volume for x in g)  # exact, not approx: volumes are k/256


def test_coinbase_leaves_quiet_buckets_out_binance_sends_flat_bars():
    m = market(gap=0.3)
    cb = m.truth("coinbase", "SIM1-USD", "5m")
    bn = m.truth("binance", "SIM1USDT", "5m")
    steps = {b.timestamp - a.timestamp for a, b in itertools.pairwise(cb)}
    assert max(steps) > FIVE_MIN_MS  # gaps
    assert {b.timestamp - a.timestamp for a, b in itertools.pairwise(bn)} == {FIVE_MIN_MS}
    flat = [c for c in bn if c.volume == 0]
    assert flat and all(c.open == c.high == c.low == c.close for c in flat)


def test_bars_are_valid_and_continuous():
    m = market(gap=0.1)
    bars = m.truth("binance", "SIM1USDT", "5m")
    for prev, cur in itertools.pairwise(bars):
        assert cur.open == prev.close
    for c in bars:
        assert 0 < c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high
        assert math.isfinite(c.volume) and c.volume >= 0


def test_prices_round_trip_through_their_strings():
    m = market()
    dec = m.decimals("coinbase", "SIM1-USD")
    for c in m.truth("coinbase", "SIM1-USD", "5m")[-500:]:
        for x in (c.open, c.high, c.low, c.close):
            assert float(cb_number(x, dec)) == x
        assert float(cb_number(c.volume)) == c.volume


def test_forming_bar_grows_into_the_final_bar():
    bar = Bar(1_000_000_200_000 - 1_000_000_200_000 % FIVE_MIN_MS, 100.0, 101.5, 99.25, 100.75, 12.5, 40)
    seen = [partial(bar, f / 20, 2) for f in range(21)]
    for a, b in itertools.pairwise(seen):
        assert b.h >= a.h and b.l <= a.l and b.v >= a.v
        assert a.o == bar.o and bar.l <= a.c <= bar.h
    assert seen[-1] == bar


def test_truth_stops_at_now_and_history_includes_forming():
    m = market()
    now = START + 7 * 60_000
    truth = m.truth("binance", "SIM1USDT", "5m", now_ms=now)
    current = now - now % FIVE_MIN_MS
    assert truth[-1].timestamp == current - FIVE_MIN_MS
    hist = m.history("binance", "SIM1USDT", FIVE_MIN_MS, current - 3 * FIVE_MIN_MS, current + FIVE_MIN_MS, now)
    assert [b.t for b in hist] == [current - 3 * FIVE_MIN_MS + i * FIVE_MIN_MS for i in range(4)]
    assert hist[-1].v < m.closed("binance", "SIM1USDT", FIVE_MIN_MS, current).v


def test_unknown_symbol_and_bad_config_are_clear_errors():
    m = market()
    with pytest.raises(UnknownSimSymbol, match="NOPE-USD"):
        m.truth("coinbase", "NOPE-USD", "5m")
    with pytest.raises(ValueError, match="not simulated"):
        m.truth("coinbase", "SIM1-USD", "3m")
    with pytest.raises(SimConfigError, match="speed"):
        SimConfig(speed=0)
    with pytest.raises(SimConfigError, match="gap_probability"):
        SimConfig(gap_probability=1.5)
    with pytest.raises(SimConfigError, match=r"\{n\}"):
        SimConfig(coinbase_symbol_format="SIM-USD")


def test_fault_validation():
    assert validate("stall", "coinbase", {"seconds": 2}) == {"seconds": 2}
    assert validate("rate_limit", "binance", {"count": 2}) == {"count": 2, "retry_after": 1}
    with pytest.raises(FaultError, match="unknown fault"):
        validate("explode", "coinbase", {})
    with pytest.raises(FaultError, match="only exists on coinbase"):
        validate("sequence_gap", "binance", {})
    with pytest.raises(FaultError, match="seconds must be a number"):
        validate("stall", "coinbase", {"seconds": float("nan")})
    with pytest.raises(FaultError, match="unknown malformed kind"):
        validate("malformed", "coinbase", {"kind": "weird"})
    with pytest.raises(FaultError, match="takes"):
        validate("drop", "coinbase", {"seconds": 1})


@pytest.mark.parametrize("kind", ["invalid_json", "missing_fields", "wrong_types", "nan", "negative_price",
                                  "high_below_low", "absurd_timestamp", "oversized"])
def test_malformed_frames_are_really_malformed(kind):
    import json

    bar = Bar(START - START % FIVE_MIN_MS, 10.0, 11.0, 9.0, 10.5, 3.0, 5)
    from streaming.sim.formats import cb_candle

    cb = corrupt_coinbase(cb_frame("candles", START * 10**6, 3, [{"type": "update",
                                                                  "candles": [cb_candle(bar, "SIM1-USD", 2)]}]),
                          kind, 4096)
    bn = corrupt_binance(bn_kline("SIM1USDT", "5m", bar, FIVE_MIN_MS, False, START), kind, 4096, "sim1usdt@kline_5m")
    for text, get in ((cb, lambda d: d["events"][0]["candles"][0]), (bn, lambda d: d["data"]["k"])):
        if kind == "invalid_json":
            with pytest.raises(ValueError):
                json.loads(text)
            continue
        c = get(json.loads(text))
        if kind == "oversized":
            assert len(text) > 4096
        elif kind == "missing_fields":
            assert "close" not in c and "c" not in c
        elif kind == "nan":
            assert "NaN" in (c.get("close"), c.get("c"))
        elif kind == "negative_price":
            assert float(c.get("open", c.get("o"))) < 0
        elif kind == "high_below_low":
            assert float(c.get("high", c.get("h"))) < float(c.get("low", c.get("l")))
        elif kind == "absurd_timestamp":
            assert int(c.get("start", c.get("t"))) > 10**13
        elif kind == "wrong_types":
            assert not isinstance(c.get("open", c.get("o")), str)


def test_weight_limiter_429_then_418():
    lim = WeightLimiter(limit=10, ban_after=2, ban_seconds=30)
    assert lim.check(8, 0.0).status == 200
    v = lim.check(5, 1.0)
    assert (v.status, v.retry_after) == (429, 59)
    assert lim.check(5, 2.0).status == 429
    assert lim.check(5, 3.0).status == 418
    assert lim.check(1, 4.0).status == 418  # banned even for light requests
    assert lim.check(1, 40.0).status == 200  # ban over, new minute


def test_timestamps_look_like_go():
    assert cb_timestamp(1_786_309_548_228_568_804) == "2026-08-09T21:05:48.228568804Z"
    assert cb_timestamp(1_786_309_552_856_438_770) == "2026-08-09T21:05:52.85643877Z"
    assert cb_timestamp(1_786_309_552_000_000_000) == "2026-08-09T21:05:52Z"


def test_recorded_binance_symbols_take_the_coinbase_recording_as_reference(recordings_dir):
    m = Market(SimConfig(symbols=2, start_ms=START, recordings=recordings_dir), SimClock(START, 1.0))
    btc_usd = float(m.recorded_products()["BTC-USD"]["price"])
    btc = m.stats_24h("binance", "BTCUSDT", START)
    assert btc["last"] == btc_usd  # USDT counted as $1
    eth_btc = m.stats_24h("binance", "ETHBTC", START)
    assert math.isclose(eth_btc["last"], float(m.recorded_products()["ETH-USD"]["price"]) / btc_usd)
    # a recorded symbol without a Coinbase reference gets a made-up market worth at most $100,000 a day,
    # so the recorded majors lead a ranking by volume
    assert m.stats_24h("binance", "XLMUPUSDT", START)["quote_volume"] <= 100_000 < btc["quote_volume"]
