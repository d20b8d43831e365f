"""Exchange times are bounded by the trusted clock: far heartbeats are ignored, bars from the
future refused, and a stale reading of the clock never refuses a real bar."""

from __future__ import annotations

import time

from streaming.adapters.clock import ExchangeClock, OpenTimeBound, wall_ms

M5 = 300_000
D1 = 86_400_000
T = 1_786_309_500_000  # a 5m (not a 1d) boundary


class Clock:
    """An explicit clock the test moves."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.now


def test_a_heartbeat_far_from_the_wall_clock_is_ignored():
    clock = ExchangeClock()
    year_9999 = 253_402_300_799_000
    assert clock.observe(year_9999) is False
    assert clock.observe(-62_135_600_400_000) is False
    assert abs(clock.now_ms() - wall_ms()) < 5_000  # not moved
    near = wall_ms() + 30_000
    assert clock.observe(near) is True  # drift within a minute is the exchange's time
    assert 25_000 < clock.now_ms() - wall_ms() < 35_000
    assert clock.observe(wall_ms() - 90_000) is False


def test_the_exchange_clock_never_leaves_the_band_around_the_trusted_clock():
    clock = ExchangeClock(max_skew_s=60.0)
    clock.observe(wall_ms() + 59_000)
    clock._mono_at -= 3600  # as if the last heartbeat came an hour ago and time ran on from it
    assert clock.now_ms() - wall_ms() <= 60_000


def test_an_explicit_clock_rules_and_its_speed_is_measured():
    start_mono = time.monotonic()
    fast = lambda: T + int((time.monotonic() - start_mono) * 600_000)  # noqa: E731 - 600x real time
    clock = ExchangeClock(fast)
    assert clock.now_ms() >= T and clock.observe(253_402_300_799_000) is False
    while time.monotonic() - start_mono < 0.2:  # enough real time to measure the speed
        time.sleep(0.01)
    assert 500 < clock.speed() < 700
    assert 30_000_000 < clock.skew_ms() < 42_000_000  # a minute of real time at 600x
    assert ExchangeClock().speed() == 1.0 and ExchangeClock().skew_ms() == 60_000


def test_a_bar_may_open_at_most_one_bucket_ahead():
    now = Clock(T + 10_000)  # 10 s into the bucket T
    bound = OpenTimeBound(ExchangeClock(now))
    assert not bound.ahead(T, M5)  # the current bar
    assert not bound.ahead(T + M5, M5)  # the next one (this machine a little behind the exchange)
    assert bound.ahead(T + 2 * M5, M5)
    assert bound.ahead(253_402_300_799_000 - 253_402_300_799_000 % M5, M5)
    assert not bound.ahead(T - D1 * 400, M5)  # the past is the book's business (late or duplicate)
    assert bound.ahead(T - T % D1 + 2 * D1, D1) and not bound.ahead(T - T % D1 + D1, D1)


def test_a_closed_bar_must_have_ended():
    now = Clock(T + 10_000)
    bound = OpenTimeBound(ExchangeClock(now))
    assert not bound.ahead(T - M5, M5, closed=True)  # ended 10 s ago
    assert bound.ahead(T, M5, closed=True)  # ends in 290 s: more than a minute ahead
    now.now = T + M5 - 30_000
    assert not bound.ahead(T, M5, closed=True)  # ends in 30 s: within the skew


def test_a_stale_reading_is_refreshed_before_a_bar_is_refused():
    now = Clock(T + 10_000)
    bound = OpenTimeBound(ExchangeClock(now))
    assert not bound.ahead(T, M5)
    reads = now.reads
    for _ in range(100):  # below the last reading: the clock is not read again
        assert not bound.ahead(T, M5)
    assert now.reads == reads
    assert bound.ahead(T + 2 * M5, M5)
    now.now = T + M5 + 1  # time moves on: the same bar is now the next one, and believable
    assert not bound.ahead(T + 2 * M5, M5)
