"""Rate limiters driven by an exchange's api_limits: a token bucket and a Binance weight budget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `delay_for` is pure; `acquire` sleeps."""

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.burst
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay_for(self, cost: float = 1.0) -> float:
        """Take `cost` tokens (possibly going negative) and return how long to wait before acting."""
        self._refill()
        self._tokens -= cost
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def acquire(self, cost: float = 1.0) -> None:
        async with self._lock:
            delay = self.delay_for(cost)
        if delay > 0:
            await asyncio.sleep(delay)


class WeightBudget:
    """Binance REST weight per minute, corrected by the server's X-MBX-USED-WEIGHT-1M header.

    The server's count wins over ours (other processes on the same IP spend the same budget).
    """

    def __init__(self, per_minute: int, safety: float = 0.9,
                 clock: Callable[[], float] = time.time) -> None:
        if per_minute <= 0:
            raise ValueError(f"weight per minute must be > 0, got {per_minute!r}")
        self.limit = int(per_minute * safety)
        self._clock = clock
        self._minute = self._current_minute()
        self.used = 0
        self._lock = asyncio.Lock()

    def _current_minute(self) -> int:
        return int(self._clock() // 60)

    def _roll(self) -> None:
        m = self._current_minute()
        if m != self._minute:
            self._minute = m
            self.used = 0

    def delay_for(self, weight: int) -> float:
        self._roll()
        if self.used + weight <= self.limit:
            self.used += weight
            return 0.0
        return (self._minute + 1) * 60 - self._clock() + 0.05

    def observe(self, used_header: str | None) -> None:
        if not used_header:
            return
        try:
            used = int(used_header)
        except ValueError:
            return
        self._roll()
        self.used = max(self.used, used)

    async def acquire(self, weight: int) -> None:
        while True:
            async with self._lock:
                delay = self.delay_for(weight)
            if delay <= 0:
                return
            await asyncio.sleep(delay)
