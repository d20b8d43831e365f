"""The StreamListener handed to adapter.live(): queues closed candles for the pipeline's run()."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from streaming.adapters.base import ConnectionState
from streaming.models import CandleUpdate


class QueueListener:
    """Called by the adapter on the event loop: O(1), never raises, never awaits."""

    def __init__(self, on_state: Callable[[ConnectionState, str | None], None] | None = None,
                 on_rejected: Callable[[list[str], str], None] | None = None) -> None:
        # (receipt time in ns, update): the time lets the bench measure frame-to-event latency
        self.queue: deque[tuple[int, CandleUpdate]] = deque()
        self.ready = asyncio.Event()
        self.forming = 0
        self.invalid = 0
        self.state: ConnectionState | None = None
        self.state_detail: str | None = None
        self.rejected: dict[str, str] = {}
        self._on_state = on_state
        self._on_rejected = on_rejected

    def on_candle(self, update: CandleUpdate) -> None:
        if not isinstance(update, CandleUpdate):
            self.invalid += 1  # an adapter bug: counted (pipeline stats), never raised into the adapter
            return
        if not update.closed:
            self.forming += 1  # forming bars never fire anything (alerts are on closes only)
            return
        self.queue.append((time.perf_counter_ns(), update))
        self.ready.set()

    def on_state(self, state: ConnectionState, detail: str | None = None) -> None:
        self.state = state
        self.state_detail = detail
        if self._on_state is not None:
            self._on_state(state, detail)

    def on_rejected(self, symbols: list[str], reason: str) -> None:
        for s in symbols:
            self.rejected[s] = reason
        if self._on_rejected is not None:
            self._on_rejected(symbols, reason)
