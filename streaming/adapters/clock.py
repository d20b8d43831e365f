"""Time as the adapters may believe it: a trusted clock, and what frames may say against it.

The trusted clock is the adapter's `clock_ms` (the simulator's clock in offline mode) or the
local wall clock. Frames carry the exchange's own times; a hostile or broken frame must not move
anything past the trusted clock:

- `ExchangeClock`: the exchange's time as seen from its heartbeats (Coinbase closes quiet buckets
  by it: the exchange and this machine drift). A frame time further than the allowed skew from
  the trusted clock is ignored (and counted by the caller); `now_ms` never leaves that band.
- `OpenTimeBound`: a bar may open at most one bucket ahead of the trusted clock, and a bar said to
  be closed must have ended (within the allowed skew). Such frames never leave the adapter, so no
  closed marker downstream can jump into the future.

The allowed skew is `MAX_SKEW_S` of real time: 60 s of exchange time on the wall clock, 60 x
speed on a simulated clock running `speed` times faster (where a frame delayed by a tenth of a
real second is already a minute late).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# how far (in real seconds) an exchange's clock may be from ours; beyond it a frame's time is
# junk, not drift or latency
MAX_SKEW_S = 60.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ExchangeClock:
    def __init__(self, explicit: Callable[[], int] | None = None, max_skew_s: float = MAX_SKEW_S) -> None:
        self._explicit = explicit
        self.trusted: Callable[[], int] = explicit if explicit is not None else wall_ms
        self.max_skew_s = max_skew_s
        self._frame_ms: int | None = None
        self._mono_at = 0.0
        self._speed_at = (time.monotonic(), self.trusted())

    def observe(self, frame_ms: int | None) -> bool:
        """Take a frame's time; False (ignored) when it is further than the skew off the trusted clock."""
        if frame_ms is None:
            return True
        if abs(frame_ms - self.trusted()) > self.skew_ms():
            return False
        if self._frame_ms is None or frame_ms >= self._frame_ms:
            self._frame_ms = frame_ms
            self._mono_at = time.monotonic()
        return True

    def now_ms(self) -> int:
        if self._explicit is not None:
            return int(self._explicit())
        trusted = self.trusted()
        if self._frame_ms is None:
            return trusted
        now = self._frame_ms + int((time.monotonic() - self._mono_at) * 1000)
        skew = self.skew_ms()
        return min(max(now, trusted - skew), trusted + skew)

    def speed(self) -> float:
        """Exchange milliseconds per real millisecond: 1 for the wall clock, measured for an
        explicit (simulated) clock; never below 1."""
        if self._explicit is None:
            return 1.0
        mono0, ms0 = self._speed_at
        real_ms = (time.monotonic() - mono0) * 1000
        if real_ms < 50:  # too short to measure (the clocks tick in milliseconds)
            return 1.0
        return max(1.0, (self.trusted() - ms0) / real_ms)

    def skew_ms(self) -> int:
        """The allowed skew in exchange milliseconds."""
        return int(self.max_skew_s * 1000 * self.speed())

    def real_ms(self, real_s: float) -> int:
        """`real_s` seconds of real time in exchange milliseconds."""
        return int(real_s * 1000 * self.speed())


class OpenTimeBound:
    """Whether a bar's open time is believable against the trusted clock.

    A bar may open at most one bucket ahead (open <= now + step: the next bucket, when this
    machine is a little behind the exchange); a closed bar must have ended, give or take the
    allowed skew (and at most one bucket). The clock is read only when a bar is beyond the last
    reading: the bound only grows with time, so a stale reading can only be too strict, and is
    then refreshed.
    """

    def __init__(self, clock: ExchangeClock) -> None:
        self._clock = clock
        self._seen = 0

    def ahead(self, open_ms: int, step_ms: int, closed: bool = False) -> bool:
        """True if the bar opens too far in the future to be real."""
        if closed:
            end = open_ms + step_ms
            if end <= self._seen:
                return False
            self._seen = int(self._clock.trusted())
            # ended within the skew, and (however fast a simulated clock runs) at most one bucket ahead
            return end - min(self._clock.skew_ms(), 2 * step_ms) > self._seen
        latest = open_ms - step_ms
        if latest <= self._seen:
            return False
        self._seen = int(self._clock.trusted())
        return latest > self._seen
