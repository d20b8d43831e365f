"""The close meter (pure): closes by timeframe, lag histogram and percentiles, script time."""

from __future__ import annotations

from streaming.pipeline.close_meter import LAG_BUCKETS_MS, CloseMeter

H = 3_600_000


def test_lag_is_bar_end_to_publication_and_never_negative():
    m = CloseMeter()
    m.published([("1h", 0), ("5m", 0), ("5m", 300_000)], H + 2_000)
    assert m.closes == {"1h": 1, "5m": 2}
    assert list(m.recent) == [2_000.0, H + 2_000 - 300_000.0, H + 2_000 - 600_000.0]
    m.published([("5m", H)], H)  # published before its bar ended (a clock skew): lag 0, not negative
    assert min(m.recent) == 0.0
    assert m.lags["1h"].sum_ms == 2_000.0 and m.lags["1h"].count == 1


def test_histogram_buckets_are_cumulative_and_end_with_inf():
    m = CloseMeter()
    lags = [50, 100, 101, 2_000, 10_000_000]
    m.published([("5m", -300_000 - lag) for lag in lags], 0)
    cumulative = m.lags["5m"].cumulative()
    assert [b for b, _ in cumulative] == [*LAG_BUCKETS_MS, float("inf")]
    as_dict = dict(cumulative)
    assert as_dict[100] == 2 and as_dict[250] == 3 and as_dict[2_500] == 4 and as_dict[float("inf")] == 5
    assert [n for _, n in cumulative] == sorted(n for _, n in cumulative)


def test_percentiles_over_the_recent_closes_only():
    m = CloseMeter(recent=100)
    assert m.lag_percentiles() == (None, None)
    m.published([("5m", -300_000 - 1_000_000)] * 50, 0)  # old, slow closes roll out of the window
    m.published([("5m", -300_000 - lag) for lag in range(1, 101)], 0)
    assert m.lag_percentiles() == (50.0, 99.0)
    assert m.closes["5m"] == 150 and m.lags["5m"].count == 150  # the counters keep everything


def test_script_time_adds_up():
    m = CloseMeter()
    m.script_call(0.5)
    m.script_call(0.25)
    assert (m.script_calls, m.script_seconds) == (2, 0.75)
