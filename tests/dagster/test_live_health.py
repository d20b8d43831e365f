"""What Dagster says about an exchange's live candles (pure): interval deltas, states, check severities."""

from datetime import UTC, datetime, timedelta

from livermore_pipelines.live_health import (
    DEGRADED,
    DOWN,
    FRESH_WINDOW,
    LIVE,
    STOPPED,
    Reading,
    assess,
    checks,
    interval_delta,
)
from streaming.contracts.stats import ExchangeStats

NOW = datetime(2026, 8, 9, 21, 0, tzinfo=UTC)
SINCE = "2026-08-09T20:00:00+00:00"


def stats(worker: str = "w1", since: str = SINCE, **fields) -> ExchangeStats:
    return ExchangeStats(worker_id=worker, since=since, written_at="2026-08-09T20:59:58+00:00", **fields)


def test_delta_against_the_previous_reading_of_the_same_run():
    before = Reading.of(stats(closes={"5m": 10}, rest_requests=4, reconnects=1))
    closes, counters = interval_delta(stats(closes={"5m": 13, "15m": 1}, rest_requests=9, reconnects=1), before)
    assert closes == {"5m": 3, "15m": 1}
    assert counters["rest_requests"] == 5 and counters["reconnects"] == 0


def test_a_restarted_worker_counts_from_zero():
    before = Reading.of(stats(closes={"5m": 100}, rest_requests=50))
    later = stats(since="2026-08-09T20:30:00+00:00", closes={"5m": 2}, rest_requests=7)
    closes, counters = interval_delta(later, before)
    assert closes == {"5m": 2} and counters["rest_requests"] == 7


def test_reading_round_trips_through_the_cursor_and_rejects_garbage():
    r = Reading.of(stats(closes={"5m": 3}, frames=8))
    assert Reading.from_json(r.to_json()) == r
    assert Reading.from_json({"since": 5}) is None and Reading.from_json("x") is None


def test_healthy_exchange_sums_workers_and_reports_the_worst_lag():
    all_stats = {"w1": stats("w1", streams=10, closes={"5m": 10}, close_lag_ms_p50=40.0, close_lag_ms_p99=90.0),
                 "w2": stats("w2", streams=5, closes={"5m": 5}, close_lag_ms_p50=70.0, close_lag_ms_p99=80.0),
                 "dead": stats("dead", streams=99, stale=["X-USD:5m"])}  # no heartbeat: left out
    previous = {"w1": Reading.of(stats("w1", closes={"5m": 4})), "w2": Reading.of(stats("w2", closes={"5m": 1}))}
    h = assess("coinbase", "connected", ["w1", "w2"], all_stats, previous, None, NOW)
    assert h.state == LIVE and h.streams == 15 and h.closes == {"5m": 10} and h.stale == []
    assert h.close_lag_ms_p50 == 70.0 and h.close_lag_ms_p99 == 90.0
    assert h.fresh and h.last_close_at == NOW.isoformat()
    meta = h.metadata()
    assert meta["streams_live"] == 15 and meta["closes_5m"] == 10 and meta["stale"] == "none"
    assert {c.name: (c.passed, c.severity) for c in checks(h)} == {
        "streams_live": (True, "WARN"), "worker_alive": (True, "ERROR"), "fresh": (True, "WARN")}


def test_some_stale_streams_warn():
    s = stats(streams=10, stale=["BTC-USD:5m", "ETH-USD:1h"], closes={"5m": 1})
    h = assess("coinbase", "connected", ["w1"], {"w1": s}, {}, None, NOW)
    assert h.state == DEGRADED and h.metadata()["streams_stale"] == 2
    by_name = {c.name: c for c in checks(h)}
    assert not by_name["streams_live"].passed and by_name["streams_live"].severity == "WARN"
    assert "2 of 10 streams stale: BTC-USD:5m, ETH-USD:1h" in by_name["streams_live"].description
    assert by_name["worker_alive"].passed


def test_worker_dead_while_the_exchange_should_run_is_an_error():
    h = assess("coinbase", "connected", [], {"gone": stats("gone", streams=10)}, {}, None, NOW)
    assert h.state == DOWN and h.workers == [] and h.streams == 0
    alive = {c.name: c for c in checks(h)}["worker_alive"]
    assert not alive.passed and alive.severity == "ERROR" and "no live worker" in alive.description


def test_stopped_exchange_is_not_an_error():
    h = assess("coinbase", "disconnected", [], {}, {}, None, NOW)
    assert h.state == STOPPED and {c.name: c.passed for c in checks(h)}["worker_alive"]
    assert all(c.passed and "coinbase is stopped" in c.description for c in checks(h))


def test_freshness_follows_the_last_close_not_the_tick():
    quiet = stats(closes={"5m": 4})
    previous = {"w1": Reading.of(quiet)}
    recent = (NOW - FRESH_WINDOW + timedelta(seconds=1)).isoformat()
    h = assess("coinbase", "connected", ["w1"], {"w1": quiet}, previous, recent, NOW)
    assert h.new_closes == 0 and h.fresh and h.last_close_at == recent
    old = (NOW - FRESH_WINDOW - timedelta(seconds=1)).isoformat()
    h = assess("coinbase", "connected", ["w1"], {"w1": quiet}, previous, old, NOW)
    fresh = {c.name: c for c in checks(h)}["fresh"]
    assert not h.fresh and not fresh.passed and fresh.severity == "WARN" and old in fresh.description
    never = assess("coinbase", "connected", ["w1"], {"w1": quiet}, previous, None, NOW)
    assert not never.fresh and "never" in {c.name: c for c in checks(never)}["fresh"].description


def test_a_worker_just_started_gets_one_window_for_its_first_close():
    started = (NOW - FRESH_WINDOW + timedelta(minutes=1)).isoformat()
    h = assess("coinbase", "connected", ["w1"], {"w1": stats(since=started)}, {}, None, NOW)
    fresh = {c.name: c for c in checks(h)}["fresh"]
    assert h.fresh and fresh.passed and "no close yet" in fresh.description
    long_ago = (NOW - FRESH_WINDOW - timedelta(minutes=1)).isoformat()
    h = assess("coinbase", "connected", ["w1"], {"w1": stats(since=long_ago)}, {}, None, NOW)
    assert not h.fresh


def test_totals_without_an_earlier_reading_date_the_closes_from_the_workers_start_not_now():
    # on demand (no sensor cursor) a worker's totals say only that its closes came after its start
    started = (NOW - timedelta(hours=5)).isoformat()
    materialized = (NOW - timedelta(hours=4)).isoformat()
    h = assess("coinbase", "connected", ["w1"], {"w1": stats(since=started, closes={"5m": 3})}, {}, materialized, NOW)
    fresh = {c.name: c for c in checks(h)}["fresh"]
    assert h.new_closes == 3 and h.last_close_at == materialized
    assert not h.fresh and not fresh.passed and materialized in fresh.description
    # a worker that started within the window and already closed bars is fresh
    recent = (NOW - timedelta(minutes=3)).isoformat()
    h = assess("coinbase", "connected", ["w1"], {"w1": stats(since=recent, closes={"5m": 3})}, {}, materialized, NOW)
    assert h.fresh and h.last_close_at == recent
    # a restarted worker (new since) counts from its start as well
    previous = {"w1": Reading.of(stats(since=started, closes={"5m": 100}))}
    h = assess("coinbase", "connected", ["w1"], {"w1": stats(since=recent, closes={"5m": 2})}, previous, None, NOW)
    assert h.closes == {"5m": 2} and h.last_close_at == recent
