"""A sliding-window rate limit on an injected clock: at most `count` sends in any `window_s`.

Pure: the caller passes `now` (seconds) to every call. A sliding window (not a token bucket) is what
the services document ("5 requests per 2 seconds"), and it can never exceed that in any window.
"""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    def __init__(self, count: int, window_s: float) -> None:
        if count < 1 or window_s <= 0:
            raise ValueError(f"a rate limit needs count >= 1 and window_s > 0, got {count}/{window_s}")
        self.count = count
        self.window_s = window_s
        self._sent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        # a send at t occupies the window (t - window_s, t]: it frees its slot at t + window_s
        while self._sent and self._sent[0] + self.window_s <= now:
            self._sent.popleft()

    def free(self, now: float) -> int:
        """Sends allowed right now."""
        self._expire(now)
        return self.count - len(self._sent)

    def next_free(self, now: float) -> float:
        """The earliest time >= now at which one send is allowed."""
        self._expire(now)
        if len(self._sent) < self.count:
            return now
        return self._sent[0] + self.window_s

    def take(self, now: float) -> None:
        """Record a send at `now`; ValueError if that would break the limit (a caller bug)."""
        if self.free(now) < 1:
            raise ValueError("rate limit exceeded: check next_free() before take()")
        if self._sent and now < self._sent[-1]:
            raise ValueError("the clock went backwards")
        self._sent.append(now)
