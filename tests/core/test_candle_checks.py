"""Candles that cannot exist are named by their defect; aggregation never produces a non-finite bar."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.aggregation import AggregationError, TimeframeAggregator, aggregate
from streaming.candle_checks import DEFECTS, MAX_VALUE, candle_defect, named_defect
from streaming.models import Candle
from streaming.store.codec import BadCandle, check_candle

T = 1_700_000_100_000 - 1_700_000_100_000 % 86_400_000  # a UTC midnight
M5 = 300_000
GOOD = Candle(T, 100.0, 101.0, 99.0, 100.5, 12.5)


@pytest.mark.parametrize(("candle", "defect"), [
    ("not a candle", "not_a_candle"),
    (Candle(-1, 1, 2, 0.5, 1.5, 1), "bad_timestamp"),
    (Candle(True, 1, 2, 0.5, 1.5, 1), "bad_timestamp"),  # type: ignore[arg-type]
    (Candle(T, float("nan"), 2, 0.5, 1.5, 1), "non_finite"),
    (Candle(T, 1, float("inf"), 0.5, 1.5, 1), "non_finite"),
    (Candle(T, 1, 2, 0.5, 1.5, float("-inf")), "non_finite"),
    (Candle(T, 1, 2, 0.5, 1.5, "x"), "non_finite"),  # type: ignore[arg-type]
    (Candle(T, Decimal("NaN"), 2, 0.5, 1.5, 1), "non_finite"),  # type: ignore[arg-type]  # compared, it raises
    (Candle(T, 1, 0.4, 0.5, 0.45, 1), "inconsistent"),  # low > high
    (Candle(T, 3, 2, 0.5, 1.5, 1), "inconsistent"),  # open above high
    (Candle(T, 1, 2, 0.5, 0.4, 1), "inconsistent"),  # close below low
    (Candle(T, 1e308, 1e308, 1e308, 1e308, 1), "out_of_range"),
    (Candle(T, 1, 2, 0.5, 1.5, 1e308), "out_of_range"),
    (Candle(T, 1, 2, 0.5, 1.5, -1), "out_of_range"),
    (Candle(T, 0, 0, 0, 0, 1), "out_of_range"),
    (Candle(T, -2, -1, -3, -2, 1), "out_of_range"),
])
def test_each_defect_is_named_and_the_store_check_refuses_it(candle, defect):
    assert defect in DEFECTS
    assert candle_defect(candle) == defect
    with pytest.raises(BadCandle) as info:
        check_candle(candle)
    assert info.value.defect == defect


@pytest.mark.parametrize("candle", [
    GOOD,
    Candle(T, 1.0, 1.0, 1.0, 1.0, 0.0),  # a flat bar without trades
    Candle(T, MAX_VALUE, MAX_VALUE, MAX_VALUE, MAX_VALUE, MAX_VALUE),
    Candle(T, 1e-12, 1e-12, 1e-12, 1e-12, 1.0),
])
def test_candles_that_can_exist_pass(candle):
    assert candle_defect(candle) is None
    check_candle(candle)


def test_aggregation_refuses_absurd_magnitudes_without_touching_state():
    agg = TimeframeAggregator()
    agg.add(Candle(T, 1, 2, 0.5, 1.5, 1))
    before = agg.to_dict()
    for bad in (Candle(T + M5, 1, 2, 0.5, 1.5, 1e308), Candle(T + M5, 1e300, 1e300, 1e300, 1e300, 1)):
        with pytest.raises(AggregationError, match="beyond"):
            agg.add(bad)
        with pytest.raises(AggregationError, match="beyond"):
            aggregate([bad], "1h")
    assert agg.to_dict() == before


def test_aggregates_of_the_largest_allowed_bars_stay_finite():
    day = [Candle(T + i * M5, MAX_VALUE, MAX_VALUE, MAX_VALUE, MAX_VALUE, MAX_VALUE) for i in range(288)]
    agg = TimeframeAggregator()
    closed = [bar for c in day for _, bar in agg.add(c)]
    closed += [bar for tf in ("15m", "1h", "4h", "1d") for bar in aggregate(day, tf)]
    assert closed and all(
        math.isfinite(x) for bar in closed for x in (bar.open, bar.high, bar.low, bar.close, bar.volume))
    daily = aggregate(day, "1d")[0]
    assert daily.volume == pytest.approx(288 * MAX_VALUE)


_EDGES = [0.0, -0.0, 1.0, 0.5, 2.0, -1.0, 1e-12, MAX_VALUE, MAX_VALUE * 2, float("nan"), float("inf"),
          float("-inf"), 1, True, "1"]


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from([T, 0, -1, True, 1.5]),
       *[st.one_of(st.sampled_from(_EDGES), st.floats(0.1, 3.0)) for _ in range(5)])
def test_the_fast_check_names_the_same_defect_as_the_rules_one_by_one(ts, o, h, lo, c, v):
    candle = Candle(ts, o, h, lo, c, v)  # type: ignore[arg-type]
    assert candle_defect(candle) == named_defect(candle)
