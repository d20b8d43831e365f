"""RateLimitedLog: the first warning per key at once, repeats within the interval only counted."""

from __future__ import annotations

import logging

from streaming.ratelog import RateLimitedLog


def test_one_line_per_key_per_interval_then_the_count_held_back(caplog):
    now = [100.0]
    rl = RateLimitedLog(logging.getLogger("test.ratelog"), 30.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.ratelog"):
        rl.warning("a", "failed %s", 1)
        rl.warning("a", "failed %s", 2)
        rl.warning("a", "failed %s", 3)
        rl.warning("b", "other")  # another key is not held back by "a"
        now[0] += 30.0
        rl.warning("a", "failed %s", 4)
        rl.warning("a", "failed %s", 5)
    assert [r.getMessage() for r in caplog.records] == ["failed 1", "other", "failed 4 (2 similar suppressed)"]
