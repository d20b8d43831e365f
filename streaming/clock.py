"""The platform clock: wall time, or the local simulator's faster clock in offline mode.

`livermore up --offline --sim-speed X` runs the simulator's clock X times faster than real time
and hands it to every process through LIVERMORE_SIM_CLOCK ("start_ms,real_start_ms,speed"), so
the worker's warm-up, bucket closing and aggregation agree with the exchange they talk to.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from streaming.errors import UsageError, shown

ENV = "LIVERMORE_SIM_CLOCK"
# epoch milliseconds a clock may name: 1970 .. 2200 (anything else is a typo, not a simulation)
_MAX_MS = 7_258_118_400_000


class SimClock(NamedTuple):
    start_ms: int
    real_start_ms: int
    speed: float

    def encode(self) -> str:
        return encode_sim_clock(*self)

    def now_ms(self) -> Callable[[], int]:
        return sim_clock(*self)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def encode_sim_clock(start_ms: int, real_start_ms: int, speed: float) -> str:
    return f"{int(start_ms)},{int(real_start_ms)},{float(speed)!r}"


def parse_sim_clock(raw: str) -> SimClock:
    """'start_ms,real_start_ms,speed' as written by encode_sim_clock; ValueError says what is wrong."""
    try:
        start, real_start, speed = raw.split(",")
        clock = SimClock(int(start), int(real_start), float(speed))
    except ValueError:
        raise ValueError(f"{ENV}={shown(raw)} is not 'start_ms,real_start_ms,speed'; "
                         "unset it to use the wall clock") from None
    if not (math.isfinite(clock.speed) and clock.speed > 0):
        raise ValueError(f"{ENV}: speed must be a positive number, got {shown(speed)}")
    if not (0 <= clock.start_ms <= _MAX_MS and 0 <= clock.real_start_ms <= _MAX_MS):
        raise ValueError(f"{ENV}={shown(raw)}: the times must be epoch milliseconds between 1970 and 2200")
    return clock


def sim_clock(start_ms: int, real_start_ms: int, speed: float) -> Callable[[], int]:
    def now_ms() -> int:
        return start_ms + int((time.time_ns() // 1_000_000 - real_start_ms) * speed)

    return now_ms


def clock_from_env(env: Mapping[str, str] | None = None) -> Callable[[], int]:
    """The clock this process should use: LIVERMORE_SIM_CLOCK when set, else the wall clock.

    Without `env`, the process's settings (streaming.settings.current_settings) decide.
    """
    if env is None:
        from streaming.settings import current_settings

        configured = current_settings().sim_clock
        return configured.now_ms() if configured is not None else wall_clock_ms
    raw = env.get(ENV)
    if not raw:
        return wall_clock_ms
    try:
        return parse_sim_clock(raw).now_ms()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
