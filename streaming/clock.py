"""The platform clock: wall time, or the local simulator's faster clock in offline mode.

`livermore up --offline --sim-speed X` runs the simulator's clock X times faster than real time
and hands it to every process through LIVERMORE_SIM_CLOCK ("start_ms,real_start_ms,speed"), so
the worker's warm-up, bucket closing and aggregation agree with the exchange they talk to.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

from streaming.errors import UsageError

ENV = "LIVERMORE_SIM_CLOCK"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def encode_sim_clock(start_ms: int, real_start_ms: int, speed: float) -> str:
    return f"{int(start_ms)},{int(real_start_ms)},{float(speed)!r}"


def sim_clock(start_ms: int, real_start_ms: int, speed: float) -> Callable[[], int]:
    def now_ms() -> int:
        return start_ms + int((time.time_ns() // 1_000_000 - real_start_ms) * speed)

    return now_ms


def clock_from_env(env: Mapping[str, str] | None = None) -> Callable[[], int]:
    """The clock this process should use: LIVERMORE_SIM_CLOCK when set, else the wall clock."""
    env = os.environ if env is None else env
    raw = env.get(ENV)
    if not raw:
        return wall_clock_ms
    try:
        start, real_start, speed = raw.split(",")
        start_ms, real_start_ms, factor = int(start), int(real_start), float(speed)
    except ValueError:
        raise UsageError(f"{ENV}={raw!r} is not 'start_ms,real_start_ms,speed'; unset it to use the wall clock") \
            from None
    if not factor > 0:
        raise UsageError(f"{ENV}: speed must be positive, got {factor}")
    return sim_clock(start_ms, real_start_ms, factor)
