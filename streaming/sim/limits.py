"""Binance's request-weight budget per minute: 429 with Retry-After when over, 418 when a client
keeps going. Pure: the caller passes the time."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    status: int  # 200, 429 or 418
    used: int  # weight used in the current minute
    retry_after: int = 0  # seconds


class WeightLimiter:
    def __init__(self, limit: int, ban_after: int, ban_seconds: float) -> None:
        self.limit = limit
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self._window = -1
        self.used = 0
        self._violations = 0
        self._banned_until = 0.0

    def check(self, weight: int, now: float) -> Verdict:
        window = int(now // 60)
        if window != self._window:
            self._window, self.used, self._violations = window, 0, 0
        if now < self._banned_until:
            return Verdict(418, self.used, math.ceil(self._banned_until - now))
        if self.used + weight > self.limit:
            self._violations += 1
            if self._violations > self.ban_after:
                self._banned_until = now + self.ban_seconds
                return Verdict(418, self.used, math.ceil(self.ban_seconds))
            return Verdict(429, self.used, max(1, math.ceil((window + 1) * 60 - now)))
        self.used += weight
        return Verdict(200, self.used)
