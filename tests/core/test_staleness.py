"""The stale-stream tracker (pure): thresholds, recovery, resubscribe backoff, connection downtime."""

from __future__ import annotations

import itertools

import pytest

from streaming.adapters.staleness import MAX_RESUBSCRIBE_S, StaleChanges, StaleTracker, stream_label

A = ("BTC-USD", "5m")
B = ("ETH-USD", "5m")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def tracker(threshold: float = 10.0, cadence: float = 1.0) -> tuple[StaleTracker, Clock]:
    clock = Clock()
    t = StaleTracker(threshold, cadence, clock)
    t.watch([A, B])
    return t, clock


def test_a_stream_is_stale_only_past_its_cadence_plus_the_threshold():
    t, clock = tracker()
    clock.now += 11.0  # exactly cadence + threshold: not yet
    assert not t.check()
    clock.now += 0.01
    t.frame(B)
    changes = t.check()
    assert changes.stale == [A] and changes.resubscribe == [A] and changes.recovered == []
    assert t.stale() == [A]
    assert t.check() == StaleChanges()  # reported once


def test_frames_keep_a_stream_fresh_and_one_frame_recovers_a_stale_one():
    t, clock = tracker()
    for _ in range(30):
        clock.now += 5.0
        t.frame(A)
        t.frame(B)
        assert not t.check()
    clock.now += 20
    t.frame(B)
    assert t.check().stale == [A]
    clock.now += 1
    t.frame(A)
    changes = t.check()
    assert changes.recovered == [A] and changes.stale == [] and t.stale() == []
    assert t.counts == {"stale": 1, "recovered": 1, "resubscribes": 1}


def test_resubscribes_back_off_while_the_stream_stays_stale():
    t, clock = tracker(threshold=10.0)
    t.forget([B])
    clock.now += 12
    assert t.check().resubscribe == [A]
    times = []
    for _ in range(2000):
        clock.now += 1
        if t.check().resubscribe:
            times.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] - 1012 == 10  # threshold after the first
    assert gaps[:4] == [20, 40, 80, 160]
    assert all(g <= MAX_RESUBSCRIBE_S + 1 for g in gaps)


def test_downtime_of_the_connection_does_not_count_but_stale_stays_stale():
    t, clock = tracker()
    clock.now += 8
    t.touch([A, B])  # the connection reopened
    clock.now += 8
    assert not t.check()
    clock.now += 5
    t.frame(B)
    assert t.check().stale == [A]
    clock.now += 100
    t.touch([A, B])
    t.frame(B)
    changes = t.check()
    assert changes.recovered == [] and t.stale() == [A]


def test_forgotten_streams_are_neither_stale_nor_recovered_and_frames_of_unknown_streams_are_ignored():
    t, clock = tracker()
    clock.now += 20
    assert t.check().stale == [A, B]
    t.forget([A])
    t.frame(A)
    t.frame(("XRP-USD", "5m"))
    t.frame(B)
    changes = t.check()
    assert changes.recovered == [B] and t.stale() == [] and len(t) == 1
    assert t.silent_s(A) is None and t.silent_s(B) == 0.0


def test_watch_keeps_the_clock_of_streams_already_watched():
    t, clock = tracker()
    clock.now += 9
    t.watch([A, B, ("SOL-USD", "5m")])
    clock.now += 3
    assert t.check().stale == [A, B]


def test_bad_arguments_are_refused_and_labels_read_well():
    with pytest.raises(ValueError, match="threshold_s"):
        StaleTracker(0, 1)
    with pytest.raises(ValueError, match="cadence_s"):
        StaleTracker(1, -1)
    assert stream_label(A) == "BTC-USD:5m"
    assert StaleTracker(60, 2).limit_s == 62
