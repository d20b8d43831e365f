"""Logging that cannot flood: at most one warning per key per interval, and the next one that gets
through says how many were held back in between.

Used wherever a failure can repeat at message rate (bad frames, an unreachable Redis or database):
the first occurrence is logged at once, repeats are only counted until the interval has passed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        n = self._suppressed.pop(key, 0)
        if n:
            self.logger.warning(msg + " (%d similar suppressed)", *args, n)
        else:
            self.logger.warning(msg, *args)
