"""5m -> 15m/1h/4h/1d: against pandas resample, close rules, duplicates, corrections, state."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.aggregation import AggregationError, Correction, TimeframeAggregator, aggregate
from streaming.models import Candle
from tests.core.data import frame_candles, load_frame

M5 = 300_000
DAY = 86_400_000
RULES = {"15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}


def resampled(df: pd.DataFrame, timeframe: str) -> list[Candle]:
    idx = pd.to_datetime(df["timestamp_ms"], unit="ms", utc=True)
    frame = df.set_index(idx)[["open", "high", "low", "close", "volume"]]
    out = frame.resample(RULES[timeframe], label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    out = out.dropna(subset=["open"])  # buckets without any 5m bar
    ts = (out.index.as_unit("ms").asi8).tolist()
    return [Candle(int(t), r.open, r.high, r.low, r.close, r.volume) for t, r in zip(ts, out.itertuples(), strict=True)]


def assert_same(a: list[Candle], b: list[Candle]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.timestamp == y.timestamp
        assert (x.open, x.high, x.low, x.close) == (y.open, y.high, y.low, y.close)
        assert x.volume == pytest.approx(y.volume, rel=1e-12)


def feed(agg: TimeframeAggregator, candles) -> dict[str, list[Candle]]:
    out: dict[str, list[Candle]] = {tf: [] for tf in agg.timeframes}
    for c in candles:
        for tf, bar in agg.add(c):
            out[tf].append(bar)
    return out


def c5(slot: int, o=1.0, h=2.0, lo=0.5, cl=1.5, v=1.0, base: int = 1_700_006_400_000) -> Candle:
    # base is midnight UTC, 2023-11-15
    return Candle(base + slot * M5, o, h, lo, cl, v)


@pytest.mark.parametrize("name", ["ETH_BTC-5m.csv", "XRP_ETH-5m_with_gaps.csv"])
def test_incremental_and_batch_match_pandas_resample(fixtures_dir, name):
    df = load_frame(fixtures_dir, name)
    candles = frame_candles(df)
    agg = TimeframeAggregator()
    closed = feed(agg, candles)
    for tf in RULES:
        expected = resampled(df, tf)
        assert_same(aggregate(candles, tf), expected)
        forming = agg.forming(tf)
        got = closed[tf] + ([forming] if forming is not None else [])
        assert_same(got, expected)
        # only the newest bucket may still be open
        assert forming is None or forming.timestamp == expected[-1].timestamp
    assert len(closed["1d"]) >= 2


def test_bar_closes_on_its_last_5m_slot():
    agg = TimeframeAggregator(("15m",))
    assert agg.add(c5(0, o=1, h=3, lo=0.9, cl=2, v=1)) == []
    assert agg.add(c5(1, o=2, h=4, lo=1.5, cl=2.5, v=2)) == []
    (tf, bar), *rest = agg.add(c5(2, o=2.5, h=3.5, lo=0.1, cl=3, v=3))
    assert rest == [] and tf == "15m"
    assert bar == Candle(c5(0).timestamp, 1, 4, 0.1, 3, 6)


def test_bar_closes_when_a_later_bucket_starts():
    agg = TimeframeAggregator(("15m", "1h"))
    agg.add(c5(0, cl=1.1))
    agg.add(c5(1, cl=1.2))  # slot 2 never traded
    out = agg.add(c5(4, cl=1.4))
    assert [(tf, b.timestamp, b.close) for tf, b in out] == [("15m", c5(0).timestamp, 1.2)]
    # one 5m can close every target at once: the last slot of the day
    agg = TimeframeAggregator()
    assert [tf for tf, _ in agg.add(c5(287))] == ["15m", "1h", "4h", "1d"]


def test_duplicates_never_close_twice():
    agg = TimeframeAggregator(("15m",))
    once = feed(TimeframeAggregator(("15m",)), [c5(i) for i in range(9)])
    twice: list[Candle] = []
    for i in range(9):
        for _ in range(2):
            res = agg.process(c5(i))
            twice.extend(b for _, b in res.closed)
    assert twice == once["15m"] and len(twice) == 3


def test_replacing_the_newest_5m_before_close():
    agg = TimeframeAggregator(("15m",))
    agg.add(c5(0, h=2.0, v=1.0))
    agg.add(c5(1, h=9.0, cl=9.0, v=5.0))
    agg.add(c5(1, h=3.0, cl=2.0, v=2.0))  # corrected value for the same open time
    ((_, bar),) = agg.add(c5(2, h=2.5, cl=2.2, v=1.0))
    assert (bar.high, bar.volume, bar.close) == (3.0, 4.0, 2.2)


def test_out_of_order_new_slot_inside_open_bucket_merges():
    agg = TimeframeAggregator(("1h",))
    agg.add(c5(1, o=2.0, lo=0.7, v=1.0))
    agg.add(c5(3, cl=3.3, v=1.0))
    agg.add(c5(0, o=1.0, lo=0.2, v=1.0))  # late but still open: becomes the open
    agg.add(c5(2, h=7.0, v=1.0))
    bar = agg.forming("1h")
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (1.0, 7.0, 0.2, 3.3, 4.0)


def test_input_for_a_closed_bucket_is_a_correction_not_a_close():
    agg = TimeframeAggregator(("15m", "1h"))
    for i in range(3):
        agg.add(c5(i))
    res = agg.process(c5(1, h=99.0))  # 15m bucket already closed; 1h still open, slot seen, not newest
    assert res.closed == []
    assert res.corrections == [
        Correction("15m", c5(0).timestamp, c5(1).timestamp),
        Correction("1h", c5(0).timestamp, c5(1).timestamp),
    ]
    agg.add(c5(7))
    res = agg.process(c5(4))  # a 15m bucket skipped over, never opened: too late to close
    assert res.closed == [] and res.corrections == [Correction("15m", c5(3).timestamp, c5(4).timestamp)]
    # the newest slot of an open bucket may still be replaced without any correction
    assert agg.process(c5(7, cl=5.0)) == ([], [])
    assert agg.forming("15m").close == 5.0 and agg.forming("1h").close == 5.0


def test_late_input_after_flush_is_a_correction():
    agg = TimeframeAggregator(("15m",))
    agg.add(c5(0))
    assert agg.flush(c5(3).timestamp - 1) == []
    ((tf, bar),) = agg.flush(c5(3).timestamp)
    assert tf == "15m" and bar.timestamp == c5(0).timestamp
    assert agg.flush(c5(100).timestamp) == []
    res = agg.process(c5(2))
    assert res.closed == [] and res.corrections == [Correction("15m", c5(0).timestamp, c5(2).timestamp)]
    assert [b.timestamp for _, b in agg.add(c5(5))] == [c5(3).timestamp]


def test_synthetic_flag_only_when_every_part_is_synthetic():
    agg = TimeframeAggregator(("15m",))
    syn = [Candle(c5(i).timestamp, 1, 1, 1, 1, 0, True) for i in range(3)]
    ((_, bar),) = feed_once(agg, syn)
    assert bar.synthetic
    mixed = [syn[0], c5(1), syn[2]]
    ((_, bar),) = feed_once(TimeframeAggregator(("15m",)), mixed)
    assert not bar.synthetic
    assert not aggregate(mixed, "15m")[0].synthetic and aggregate(syn, "15m")[0].synthetic


def feed_once(agg, candles):
    out = []
    for c in candles:
        out.extend(agg.add(c))
    return out


def test_state_round_trip_and_rebuild(fixtures_dir):
    candles = frame_candles(load_frame(fixtures_dir, "XRP_ETH-5m_with_gaps.csv"))
    head, tail = candles[:500], candles[500:]
    a = TimeframeAggregator()
    feed(a, head)
    b = TimeframeAggregator.from_dict(orjson.loads(orjson.dumps(a.to_dict())))
    assert b == a
    day_start = tail[0].timestamp - tail[0].timestamp % DAY
    c = TimeframeAggregator.rebuild([x for x in head if x.timestamp >= day_start - DAY])
    for x in tail:
        ra, rb, rc = a.process(x), b.process(x), c.process(x)
        assert ra == rb == rc


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(v=2),
        lambda d: d["targets"]["15m"].update(mask="zz"),
        lambda d: d["targets"]["15m"].update(last=[1, 2]),
        lambda d: d["targets"]["15m"].update(bucket=None),
        lambda d: d["targets"]["15m"].update(prefix=[0, 1, 1, 1, "x", False]),
        lambda d: d["targets"].update({"3m": {}}),
        lambda d: d.update(targets={}),
    ],
)
def test_bad_state_is_a_clear_error(mutate):
    agg = TimeframeAggregator()
    for i in range(2):
        agg.add(c5(i))
    d = orjson.loads(orjson.dumps(agg.to_dict()))
    mutate(d)
    with pytest.raises(ValueError):
        TimeframeAggregator.from_dict(d)


@pytest.mark.parametrize(
    ("candle", "match"),
    [
        (Candle(M5 + 7, 1, 1, 1, 1, 1), "not aligned"),
        (Candle(M5, float("nan"), 1, 1, 1, 1), "non-finite"),
        ("candle", "expected a Candle"),
    ],
)
def test_bad_input_is_rejected_without_touching_state(candle, match):
    agg = TimeframeAggregator()
    agg.add(c5(0))
    before = agg.to_dict()
    with pytest.raises(AggregationError, match=match):
        agg.add(candle)
    assert agg.to_dict() == before


@pytest.mark.parametrize(
    ("targets", "match"),
    [
        (("1m",), "larger multiple"),
        (("5m",), "larger"),
        ((), "non-empty"),
        ("15m", "non-empty"),
        (("1h", "1h"), "duplicate"),
    ],
)
def test_bad_targets(targets, match):
    with pytest.raises(AggregationError, match=match):
        TimeframeAggregator(targets)
    with pytest.raises(ValueError, match="unknown timeframe"):
        TimeframeAggregator(("7m",))
    with pytest.raises(AggregationError, match="not aggregated"):
        TimeframeAggregator(("15m",)).forming("1h")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(0, 600), min_size=1, max_size=120, unique=True).map(sorted),
    st.lists(st.booleans(), min_size=120, max_size=120),
    st.data(),
)
def test_random_gappy_streams_with_duplicates_match_batch(slots, dupes, data):
    candles = [c5(s, o=s, h=s + 2, lo=s - 1, cl=s + 1, v=s % 7) for s in slots]
    agg = TimeframeAggregator()
    closed = {tf: [] for tf in agg.timeframes}
    for c, dup in zip(candles, dupes, strict=False):
        for _ in range(2 if dup else 1):
            for tf, bar in agg.add(c):
                closed[tf].append(bar)
    now = candles[-1].timestamp + data.draw(st.integers(0, 2 * DAY))
    for tf, bar in agg.flush(now):
        closed[tf].append(bar)
    for tf in agg.timeframes:
        expected = aggregate(candles, tf)
        forming = agg.forming(tf)
        assert closed[tf] + ([forming] if forming else []) == expected
        assert len({b.timestamp for b in closed[tf]}) == len(closed[tf])
