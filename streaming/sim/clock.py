"""The simulated clock: real elapsed time times the speed-up, from a chosen start."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    def __init__(self, start_ms: int, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.start_ms = int(start_ms)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now_ms(self) -> int:
        return self.start_ms + int((self._monotonic() - self._t0) * self.speed * 1000.0)

    def now_ns(self) -> int:
        return self.start_ms * 1_000_000 + int((self._monotonic() - self._t0) * self.speed * 1e9)

    def real_seconds(self, sim_seconds: float) -> float:
        """How long `sim_seconds` of simulated time last in real time."""
        return sim_seconds / self.speed
