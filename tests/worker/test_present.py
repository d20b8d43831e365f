"""The CLI's words for the platform's state (pure): warm-up progress, workers and exchanges, every
line within 80 columns whatever the values, merged progress of several workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streaming.cli._present import exchange_lines, progress_words, status_progress, worker_lines
from streaming.control.merge import merge_warm_up, sum_progress
from streaming.worker.progress import WarmUpTracker, warm_up_problem

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_progress_words():
    assert progress_words({"streams_done": 120, "streams_total": 250, "candles": 36000, "eta_s": 12.4}) == \
        "warm-up 120/250 streams, 36,000 candles, about 12s left"
    assert progress_words({"streams_done": 3, "streams_total": 250, "candles": None, "eta_s": 400}) == \
        "warm-up 3/250 streams, about 7 min left"
    assert progress_words({"streams_done": 250, "streams_total": 250, "candles": 5, "eta_s": 0}) == \
        "warm-up 250/250 streams, 5 candles"


def test_a_worker_with_a_warm_up_and_a_long_id_fits_80_columns():
    worker = {"worker_id": "a-very-long-host-name.example.internal:1234567", "pid": 1234567, "shard": None,
              "user": None, "age_s": 0.42, "exchanges": {"coinbase": "connecting", "binance": "connected"},
              "warm_up": {"coinbase": {"streams_done": 120, "streams_total": 250, "candles": 36000, "eta_s": 12}}}
    lines = worker_lines(worker)
    assert all(len(line) <= 80 for line in lines), lines
    text = " ".join(" ".join(lines).split())
    assert "shard all, user any), heartbeat 0.4s ago" in text
    assert "coinbase connecting: warm-up 120/250 streams, 36,000 candles, about 12s left" in text
    assert "binance connected" in text and "{" not in text


def test_exchange_lines_say_since_when_why_and_how_far():
    connected = {"name": "coinbase", "display_name": "Coinbase Advanced Trade", "active": True,
                 "connection_state": "connected", "connected_at": "2026-11-24T09:00:00+00:00",
                 "last_heartbeat": (NOW - timedelta(seconds=2)).isoformat(), "last_error": None, "warm_up": None}
    assert exchange_lines(connected, NOW) == [
        "  coinbase (Coinbase Advanced Trade): connected since 2026-11-24 09:00:00 UTC,", "      last frame 2.0s ago"]
    failing = {**connected, "connection_state": "error", "last_error": "x" * 20 + " " + "cause " * 60}
    lines = exchange_lines(failing, NOW)
    assert lines[0] == "  coinbase (Coinbase Advanced Trade): error" and all(len(line) <= 80 for line in lines)
    idle = {**connected, "connection_state": "idle", "last_error": "old", "active": False}
    assert exchange_lines(idle, NOW) == ["  coinbase (Coinbase Advanced Trade), inactive: idle"]
    warming = {**connected, "connection_state": "connecting",
               "warm_up": status_progress({"warmup_done": "3", "warmup_total": "10", "warmup_candles": "",
                                           "warmup_eta_s": "7"})}
    assert exchange_lines(warming, NOW)[1] == "    warm-up 3/10 streams, about 7s left"
    stalling = {**connected, "stale_streams": 2}
    assert exchange_lines(stalling, NOW)[2:] == [
        "    2 stale streams: no frame past the threshold, resubscribed"]
    assert exchange_lines({**connected, "stale_streams": 0}, NOW) == exchange_lines(connected, NOW)
    # streams whose warm-up failed: one short line until their history is in
    holes = exchange_lines({**connected, "history_missing": 11}, NOW)
    assert holes[2:] == ["    11 streams missing history: warm-up failed, retrying"]
    assert all(len(line) <= 80 for line in holes)
    assert exchange_lines({**connected, "history_missing": 1}, NOW)[2] == (
        "    1 stream missing history: warm-up failed, retrying")
    assert exchange_lines({**connected, "history_missing": 0}, NOW) == exchange_lines(connected, NOW)
    assert len(exchange_lines({**idle, "history_missing": 3}, NOW)) == 1
    assert status_progress({"warmup_done": "10", "warmup_total": "10"}) is None  # done: nothing to show
    # a finished warm-up says how many REST requests it sent (0: a warm restart)
    warm_restart = {**connected, "warmup_requests": 0}
    assert exchange_lines(warm_restart, NOW)[2] == "    warm-up done with 0 REST requests"
    assert len(exchange_lines({**idle, "warmup_requests": 500}, NOW)) == 1  # idle: nothing to add


def test_progress_of_several_workers_is_summed():
    a = {"streams_done": 5, "streams_total": 10, "candles": 100, "eta_s": 4.0, "started_at": "2026-11-24T10:00:01Z"}
    b = {"streams_done": 1, "streams_total": 10, "candles": 20, "eta_s": 9.0, "started_at": "2026-11-24T10:00:00Z"}
    assert sum_progress([a, None, b]) == {"streams_done": 6, "streams_total": 20, "candles": 120, "requests": None,
                                          "eta_s": 9.0, "started_at": "2026-11-24T10:00:00Z", "workers": 2}
    assert sum_progress([{**a, "requests": 3}, {**b, "requests": 4}])["requests"] == 7
    assert sum_progress([None]) is None
    assert sum_progress([a, {**b, "candles": None, "eta_s": None}])["candles"] is None
    merged = merge_warm_up([{"warmup_done": "5", "warmup_total": "10", "warmup_candles": "100", "warmup_eta_s": "4",
                             "warmup_started_at": "2026-11-24T10:00:01+00:00"},
                            {"warmup_done": "10", "warmup_total": "10", "warmup_candles": "7", "warmup_eta_s": "",
                             "warmup_started_at": "2026-11-24T10:00:00+00:00"}, {}])
    assert merged == {"warmup_done": "15", "warmup_total": "20", "warmup_candles": "107", "warmup_eta_s": "4",
                      "warmup_requests": "", "warmup_started_at": "2026-11-24T10:00:00+00:00"}
    # the REST requests of finished warm-ups are summed (a warm restart may have sent none)
    done = merge_warm_up([{"warmup_done": "10", "warmup_total": "10", "warmup_requests": "12"},
                          {"warmup_done": "5", "warmup_total": "5", "warmup_requests": "0"}])
    assert done["warmup_requests"] == "12"


def test_tracker_eta_and_publication_rate():
    tracker = WarmUpTracker(10, started_mono=100.0, started_wall=0.0, every_s=0.5)
    assert tracker.snapshot(100.0).eta_s is None  # nothing done yet: no pace
    assert tracker.step(1, 10, None, 101.0) is True  # the first step is published
    assert tracker.step(2, 10, None, 101.2) is False  # too soon
    assert tracker.snapshot(102.0).eta_s == 8.0  # 2 done in 2 s: 8 left take 8 s
    assert tracker.step(10, 10, 3000, 101.3) is True  # the last one always
    assert tracker.finished and tracker.summary(103.0) == {"streams_done": 10, "streams_total": 10,
                                                           "candles": 3000, "seconds": 3.0}
    tracker.finish(3000, 104.5, requests=20)
    # done: the answer says how long it took, however much later it is asked
    assert tracker.summary(113.0)["seconds"] == tracker.summary(200.0)["seconds"] == 4.5


class Report:
    def __init__(self, total: int, refused: dict, failed: dict) -> None:
        self.total, self.refused, self.failed = total, refused, failed


def test_a_warm_up_that_got_nothing_fails_the_start():
    syms = ["A-USD", "B-USD"]
    assert warm_up_problem(Report(10, {}, {}), syms, 5) is None
    assert warm_up_problem(Report(10, {}, {"A-USD 5m": "x"}), syms, 5) is None  # most streams came
    kind, text = warm_up_problem(Report(10, {"A-USD": "unknown", "B-USD": "unknown"}, {}), syms, 5)
    assert kind == "refused" and text == "A-USD (unknown); B-USD (unknown)"
    failed = {f"{s} {tf}": "ExchangeUnavailable: coinbase: refused; do this" for s in syms for tf in "12345"}
    kind, text = warm_up_problem(Report(10, {}, failed), syms, 5)
    assert kind == "failed" and text == "the warm-up could fetch none of 10 streams: coinbase: refused; do this"
    half = {f"B-USD {tf}": "TransportError: x" for tf in "12345"}
    assert warm_up_problem(Report(10, {"A-USD": "unknown"}, half), syms, 5)[0] == "failed"
