"""The integrity audit's pure logic: comparing two candle lists, its window and its symbol sample."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livermore_pipelines.candle_audit import (
    AuditInputError,
    BarDifference,
    Tolerance,
    audit_window,
    compare_candles,
    differing_fields,
    sample_symbols,
)
from streaming.models import Candle

M5 = 300_000
T0 = 1_786_309_200_000  # a 5m boundary


def bar(i: int, close: float = 100.0, volume: float = 3.0, **kw: float) -> Candle:
    values = {"open": 99.5, "high": 101.0, "low": 99.0, "close": close, "volume": volume, **kw}
    return Candle(T0 + i * M5, values["open"], values["high"], values["low"], values["close"], values["volume"])


def series(n: int) -> list[Candle]:
    return [bar(i, close=100.0 + i / 8, high=101.0 + i / 8) for i in range(n)]


WHOLE = (T0, T0 + 100 * M5)


def test_equal_lists_have_no_differences():
    assert compare_candles(series(20), series(20), *WHOLE) == []
    assert compare_candles([], [], *WHOLE) == []


@pytest.mark.parametrize("field", ["open", "high", "low", "close", "volume"])
def test_each_field_is_compared(field):
    ours = series(5)
    changed = {"open": 100.0, "high": 120.0, "low": 90.0, "close": 99.25, "volume": 4.5}[field]
    values = {f: getattr(ours[2], f) for f in ("open", "high", "low", "close", "volume")}
    values[field] = changed
    theirs = list(ours)
    theirs[2] = Candle(ours[2].timestamp, **values)
    diffs = compare_candles(ours, theirs, *WHOLE)
    assert diffs == [BarDifference(ours[2].timestamp, "mismatch", ours[2], theirs[2], (field,))]
    assert diffs[0].repair == theirs[2]


def test_several_fields_are_listed_in_ohlcv_order():
    ours, theirs = bar(0), bar(0, close=99.1, volume=9.0, low=98.0)
    assert differing_fields(ours, theirs) == ("low", "close", "volume")


def test_a_hole_in_the_store_is_missing_and_repaired_with_the_exchange_bar():
    theirs = series(6)
    ours = theirs[:2] + theirs[3:]
    assert compare_candles(ours, theirs, *WHOLE) == [BarDifference(theirs[2].timestamp, "missing", None, theirs[2])]


def test_a_stored_bar_the_exchange_does_not_serve_is_unconfirmed_and_not_repairable():
    ours = series(6)
    theirs = ours[:4] + ours[5:]
    [diff] = compare_candles(ours, theirs, *WHOLE)
    assert diff == BarDifference(ours[4].timestamp, "unconfirmed", ours[4], None)
    assert diff.repair is None


def test_differences_come_oldest_first_whatever_the_input_order():
    theirs = series(8)
    ours = [theirs[6], bar(1, close=100.5), theirs[0], theirs[3], theirs[2], theirs[7], bar(5, close=100.2)]
    diffs = compare_candles(ours, list(reversed(theirs)), *WHOLE)
    assert [(d.timestamp, d.kind) for d in diffs] == [
        (theirs[1].timestamp, "mismatch"), (theirs[4].timestamp, "missing"), (theirs[5].timestamp, "mismatch")]


def test_only_the_window_is_compared():
    ours, theirs = series(10), series(12)
    theirs[1] = bar(1, close=100.6)  # before the window
    # after the window: the exchange has two newer bars the store does not (yet)
    diffs = compare_candles(ours, theirs, T0 + 2 * M5, T0 + 10 * M5)
    assert diffs == []
    # the window's end is exclusive, its start inclusive
    assert [d.timestamp for d in compare_candles(ours, theirs, T0 + M5, T0 + 11 * M5)] == [
        T0 + M5, T0 + 10 * M5]


def test_an_empty_window_compares_nothing_and_a_reversed_one_is_refused():
    assert compare_candles(series(3), [], T0, T0) == []
    with pytest.raises(AuditInputError, match="empty window"):
        compare_candles([], [], T0 + 1, T0)


def test_float_noise_of_a_summed_volume_is_equal_a_tick_is_not():
    ours = bar(0, volume=0.1 + 0.2 + 0.3, close=100.0)
    theirs = bar(0, volume=0.6, close=100.0)
    assert ours.volume != theirs.volume  # the float sum is off in its last bits
    assert differing_fields(ours, theirs) == ()
    # one cent on 100 000 (relative 1e-7) is a real price difference
    assert differing_fields(bar(0, high=100_000.0, close=100_000.0),
                            bar(0, high=100_000.0, close=99_999.99)) == ("close",)
    # an 8-decimal tick on a tiny price too
    assert differing_fields(bar(0, open=0.00001234, high=0.00001235, low=0.00001233, close=0.00001234),
                            bar(0, open=0.00001234, high=0.00001235, low=0.00001233, close=0.00001235)) == ("close",)


def test_zero_volume_against_rounding_noise_is_equal():
    assert differing_fields(bar(0, volume=0.0), bar(0, volume=1e-15)) == ()
    assert differing_fields(bar(0, volume=0.0), bar(0, volume=1e-6)) == ("volume",)


def test_tolerances_are_configurable_and_zero_means_exact():
    ours, theirs = bar(0, volume=1.0), bar(0, volume=1.0000001)
    assert differing_fields(ours, theirs) == ()
    assert differing_fields(ours, theirs, Tolerance(volume_rel=0.0)) == ("volume",)
    assert differing_fields(bar(0, close=100.0), bar(0, close=100.00000001), Tolerance(price_rel=0.0)) == ("close",)
    assert differing_fields(bar(0, close=100.0), bar(0, close=100.5), Tolerance(price_rel=0.01)) == ()


@pytest.mark.parametrize("bad", [-1e-9, 1.0, 2, math.nan, math.inf, True, "0.1", None])
def test_a_bad_tolerance_is_refused_by_name(bad):
    with pytest.raises(AuditInputError, match="price_rel must be a relative tolerance"):
        Tolerance(price_rel=bad)
    with pytest.raises(AuditInputError, match="volume_rel"):
        Tolerance(volume_rel=bad)


def test_synthetic_or_impossible_exchange_bars_count_as_absent():
    ours = series(4)
    theirs = list(ours)
    theirs[1] = Candle(ours[1].timestamp, 100.0, 100.0, 100.0, 100.0, 0.0, synthetic=True)
    theirs[2] = Candle(ours[2].timestamp, 100.0, 99.0, 101.0, 100.0, 1.0)  # low above high
    theirs[3] = Candle(ours[3].timestamp, 100.0, 101.0, 99.0, math.nan, 1.0)
    diffs = compare_candles(ours, theirs, *WHOLE)
    assert [(d.kind, d.repair) for d in diffs] == [("unconfirmed", None)] * 3


def test_duplicates_that_agree_are_one_bar_those_that_differ_are_refused():
    ours = series(3)
    assert compare_candles(ours + ours[:1], ours + ours, *WHOLE) == []
    with pytest.raises(AuditInputError, match="exchange: two different bars open at"):
        compare_candles(ours, [*ours, bar(0, close=100.7)], *WHOLE)
    with pytest.raises(AuditInputError, match="stored: two different bars"):
        compare_candles([*ours, bar(1, close=100.7)], ours, *WHOLE)


def test_values_that_are_not_candles_are_refused():
    with pytest.raises(AuditInputError, match="stored: expected Candle values, got tuple"):
        compare_candles([(T0, 1, 1, 1, 1, 1)], [], *WHOLE)  # type: ignore[list-item]
    with pytest.raises(AuditInputError, match="exchange: expected Candle values, got dict"):
        compare_candles([], [{"timestamp": T0}], *WHOLE)  # type: ignore[list-item]


prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def candle_lists(draw):
    n = draw(st.integers(min_value=0, max_value=30))
    out = []
    for i in sorted(draw(st.sets(st.integers(min_value=0, max_value=40), min_size=n, max_size=n))):
        lo, hi = sorted((draw(prices), draw(prices)))
        o, c = draw(st.floats(lo, hi)), draw(st.floats(lo, hi))
        out.append(Candle(T0 + i * M5, o, hi, lo, c, draw(st.floats(0, 1e6))))
    return out


@given(candle_lists(), candle_lists())
def test_property_a_repair_makes_the_store_agree(ours, theirs):
    """Applying every repair to the stored bars leaves only the unconfirmed ones; comparing with
    itself finds nothing; every difference names an open time one side has."""
    assert compare_candles(ours, ours, *WHOLE) == []
    diffs = compare_candles(ours, theirs, *WHOLE)
    repaired = {c.timestamp: c for c in ours}
    for d in diffs:
        assert d.timestamp in {c.timestamp for c in ours} | {c.timestamp for c in theirs}
        if d.repair is not None:
            repaired[d.timestamp] = d.repair
    after = compare_candles(list(repaired.values()), theirs, *WHOLE)
    assert all(d.kind == "unconfirmed" for d in after)
    assert {d.timestamp for d in after} == {c.timestamp for c in ours} - {c.timestamp for c in theirs}


def test_window_spans_the_sampled_bars_through_the_newest_ones_end():
    assert audit_window([], M5) is None
    assert audit_window(series(4), M5) == (T0, T0 + 4 * M5)
    assert audit_window(series(1), 86_400_000) == (T0, T0 + 86_400_000)
    with pytest.raises(AuditInputError, match="positive number of ms"):
        audit_window(series(1), 0)


def test_sample_takes_all_symbols_when_k_covers_them():
    assert sample_symbols(["A", "B", "C"], 3, 17) == ["A", "B", "C"]
    assert sample_symbols(["A", "B", "A"], 5, 0) == ["A", "B"]
    assert sample_symbols([], 5, 0) == []


def test_sample_rotates_so_successive_runs_cover_every_symbol():
    symbols = [f"S{i}" for i in range(7)]
    assert sample_symbols(symbols, 3, 0) == ["S0", "S1", "S2"]
    assert sample_symbols(symbols, 3, 1) == ["S3", "S4", "S5"]
    assert sample_symbols(symbols, 3, 2) == ["S6", "S0", "S1"]
    covered = set()
    for run in range(3):
        covered.update(sample_symbols(symbols, 3, run))
    assert covered == set(symbols)
    assert sample_symbols(symbols, 3, -1) == ["S4", "S5", "S6"]


@pytest.mark.parametrize("k", [0, -2, 1.5, True, "3"])
def test_sample_refuses_a_bad_k(k):
    with pytest.raises(AuditInputError, match="symbols per run must be a positive integer"):
        sample_symbols(["A"], k, 0)
