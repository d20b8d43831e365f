"""The exchange's clock as seen from its frames: the last frame time, advanced by local elapsed time.

Closing quiet buckets by the clock must follow the exchange's time, not the local one (they
drift, and the local simulator runs faster than real time). An explicit clock wins.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ExchangeClock:
    def __init__(self, explicit: Callable[[], int] | None = None) -> None:
        self._explicit = explicit
        self._frame_ms: int | None = None
        self._mono_at = 0.0

    def observe(self, frame_ms: int | None) -> None:
        if frame_ms is not None and (self._frame_ms is None or frame_ms >= self._frame_ms):
            self._frame_ms = frame_ms
            self._mono_at = time.monotonic()

    def now_ms(self) -> int:
        if self._explicit is not None:
            return int(self._explicit())
        if self._frame_ms is None:
            return int(time.time() * 1000)
        return self._frame_ms + int((time.monotonic() - self._mono_at) * 1000)
