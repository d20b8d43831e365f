import time

import pytest

from streaming.clock import ENV, clock_from_env, encode_sim_clock, wall_clock_ms
from streaming.errors import UsageError


def test_default_is_the_wall_clock():
    clock = clock_from_env({})
    assert clock is wall_clock_ms
    assert abs(clock() - time.time() * 1000) < 1000


def test_sim_clock_runs_faster_from_its_start():
    real = wall_clock_ms()
    clock = clock_from_env({ENV: encode_sim_clock(1_000_000, real, 600.0)})
    first = clock()
    time.sleep(0.05)
    second = clock()
    assert first >= 1_000_000
    assert second - first >= 0.05 * 600 * 1000 * 0.9


@pytest.mark.parametrize("raw", ["x", "1,2", "1,2,abc", "1,2,0", "1,2,-3"])
def test_bad_sim_clock_is_a_clear_error(raw):
    with pytest.raises(UsageError, match=ENV):
        clock_from_env({ENV: raw})


def test_factory_hands_the_sim_clock_to_adapters():
    from streaming.adapters.factory import build_adapter
    from streaming.db.seed import EXCHANGES

    env = {ENV: encode_sim_clock(5_000_000, wall_clock_ms(), 1.0)}
    adapter = build_adapter(EXCHANGES[0], env)
    assert abs(adapter.now_ms() - 5_000_000) < 5_000
