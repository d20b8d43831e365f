"""The service's clock: epoch seconds for rate limits, backoffs and signature timestamps, and a
way to wait for a time or a wake-up. Injected, so tests drive the limiter without waiting."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep_until(self, when: float | None, wake: asyncio.Event) -> None:
        """Return at `when` (None: never) or as soon as `wake` is set, whichever is first."""
        ...


class WallClock:
    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float | None, wake: asyncio.Event) -> None:
        timeout = None if when is None else max(0.0, when - time.time())
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            pass
