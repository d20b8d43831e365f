"""Simulator configurations for tests: the simulated clock always starts at the same instant, so
which buckets are quiet, where a bar closes relative to a test's first request, and every other
time-of-day effect is the same on every run."""

from __future__ import annotations

from typing import Any

from streaming.clock import ENV as SIM_CLOCK_ENV
from streaming.sim import SimConfig

# 2026-08-09T21:05:48Z, the time of the Coinbase recording: 48 s into a 5m bucket
TEST_START_MS = 1_786_309_548_000


def sim_config(**kw: Any) -> SimConfig:
    """SimConfig with the test clock start unless a test picks its own."""
    kw.setdefault("start_ms", TEST_START_MS)
    return SimConfig(**kw)


def sim_clock_env(sim: Any) -> dict[str, str]:
    """The environment that gives a worker or CLI process the simulator's clock (LIVERMORE_SIM_CLOCK)."""
    return {SIM_CLOCK_ENV: sim.clock_setting()}
