"""Capped exponential backoff with full jitter (pure: the caller sleeps)."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 30.0, factor: float = 2.0,
                 rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base or factor < 1:
            raise ValueError(f"bad backoff parameters base={base} cap={cap} factor={factor}")
        self.base = base
        self.cap = cap
        self.factor = factor
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """Delay before the next attempt: uniform in [ceiling/2, ceiling], ceiling capped.

        Half-jitter keeps a floor so a crowd of clients reconnecting at once spreads out but
        none hammers the server immediately.
        """
        ceiling = min(self.cap, self.base * self.factor ** min(self.attempt, 60))
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def fresh(self) -> Backoff:
        """A new sequence with the same parameters, starting at attempt 0."""
        return Backoff(self.base, self.cap, self.factor)

    def reset(self) -> None:
        self.attempt = 0
