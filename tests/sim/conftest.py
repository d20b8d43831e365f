from __future__ import annotations

import pytest

from streaming.sim import SimConfig
from streaming.sim.testing import running_simulator

START_MS = 1_786_309_548_000  # 2026-08-09T21:05:48Z, the Coinbase recording's time


@pytest.fixture(scope="module")
def sim(fixtures_dir):
    """speed 600: a 5m bar every half real second."""
    cfg = SimConfig(symbols=3, seed=7, speed=600.0, update_interval=0.05, gap_probability=0.2,
                    start_ms=START_MS, recordings=fixtures_dir)
    with running_simulator(cfg) as handle:
        yield handle
