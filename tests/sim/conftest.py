from __future__ import annotations

import pytest

from streaming.sim import SimConfig
from streaming.sim.testing import running_simulator
from tests.helpers.sim import TEST_START_MS


@pytest.fixture(scope="module")
def sim(recordings_dir):
    """speed 600: a 5m bar every half real second."""
    cfg = SimConfig(symbols=3, seed=7, speed=600.0, update_interval=0.05, gap_probability=0.2,
                    start_ms=TEST_START_MS, recordings=recordings_dir)
    with running_simulator(cfg) as handle:
        yield handle
