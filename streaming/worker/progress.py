"""How far an exchange's warm-up is, how long it still needs, and whether the start can go on.

The warm-up calls back after every (symbol, timeframe) stream; WarmUpTracker (pure: clocks are
passed in) turns that into a WarmUpProgress (streams done / total, candles written, an ETA at
the pace so far) and says when it is worth publishing (at most every `every_s`, and always the
last step) so hundreds of streams do not become hundreds of Redis writes; WarmUpReporter
publishes it. warm_up_problem reads the warm-up's report: nothing usable means the start fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streaming.contracts.workers import WarmUpProgress
from streaming.timestamps import utc_iso

log = logging.getLogger(__name__)


class WarmUpTracker:
    def __init__(self, total: int, started_mono: float, started_wall: float, every_s: float = 0.5) -> None:
        self.total = total
        self.done = 0
        self.candles: int | None = None  # known once the warm-up reports it
        self.requests: int | None = None  # known once the warm-up is done
        self.started_mono = started_mono
        self.started_at = utc_iso(started_wall)
        self.every_s = every_s
        self._published_at: float | None = None
        self.ended_mono: float | None = None  # when finish() was called: the warm-up's length stops there

    def step(self, done: int, total: int, candles: int | None, now_mono: float) -> bool:
        """Record a callback; True when this step should be published."""
        self.done, self.total = done, max(total, done)
        if candles is not None:
            self.candles = candles
        due = (self._published_at is None or now_mono - self._published_at >= self.every_s
               or self.done >= self.total)
        if due:
            self._published_at = now_mono
        return due

    def finish(self, candles: int, now_mono: float, requests: int | None = None) -> None:
        self.done = self.total
        self.candles = candles
        self.requests = requests
        self._published_at = now_mono
        self.ended_mono = now_mono

    @property
    def finished(self) -> bool:
        return self.done >= self.total

    def eta_s(self, now_mono: float) -> float | None:
        if self.done <= 0 or self.finished:
            return None if not self.finished else 0.0
        elapsed = max(0.0, now_mono - self.started_mono)
        return elapsed / self.done * (self.total - self.done)

    def snapshot(self, now_mono: float) -> WarmUpProgress:
        eta = self.eta_s(now_mono)
        return WarmUpProgress(streams_done=self.done, streams_total=self.total, candles=self.candles,
                              requests=self.requests, started_at=self.started_at,
                              eta_s=None if eta is None else round(eta, 1))

    def summary(self, now_mono: float) -> dict[str, Any]:
        """What the start answer says about the warm-up (Dagster logs it); `seconds` is how long it
        took once it is done, how long it has been running before."""
        end = now_mono if self.ended_mono is None else self.ended_mono
        return {"streams_done": self.done, "streams_total": self.total, "candles": self.candles,
                "seconds": round(max(0.0, end - self.started_mono), 1)}


class WarmUpReporter:
    """Publishes a session's warm-up progress: its own and merged status (StatusPublisher
    .set_progress), one write at a time, the latest state always last; `on_change` tells the
    worker to write its heartbeat soon."""

    def __init__(self, name: str, publisher: Any, on_change: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.publisher = publisher
        self.on_change = on_change
        self.tracker: WarmUpTracker | None = None
        self._clock = clock
        self._task: asyncio.Task | None = None
        self._again = False

    def begin(self, total: int) -> None:
        self.tracker = WarmUpTracker(total, self._clock(), time.time())
        self._publish()

    def step(self, done: int, total: int, candles: int | None = None) -> None:
        """The warm-up's callback (after every stream)."""
        if self.tracker is not None and self.tracker.step(done, total, candles, self._clock()):
            self._publish()

    def end(self, candles: int, requests: int | None = None) -> None:
        if self.tracker is not None:
            self.tracker.finish(candles, self._clock(), requests)
            self._publish()

    def current(self) -> WarmUpProgress | None:
        """The progress while a warm-up runs, else None."""
        if self.tracker is None or self.tracker.finished:
            return None
        return self.tracker.snapshot(self._clock())

    def summary(self) -> dict[str, Any]:
        if self.tracker is None:
            return {}
        return {**self.tracker.summary(self._clock()), "progress": [self.tracker.done, self.tracker.total]}

    def _publish(self) -> None:
        if self.on_change is not None:
            with contextlib.suppress(Exception):
                self.on_change()
        if self._task is not None and not self._task.done():
            self._again = True  # the running write publishes the newest state when it is done
            return
        self._task = asyncio.create_task(self._write(), name=f"{self.name}-progress")

    async def _write(self) -> None:
        while self.tracker is not None:
            self._again = False
            try:
                await self.publisher.set_progress(self.tracker.snapshot(self._clock()))
            except Exception as exc:  # Redis hiccup: the next step publishes again
                log.warning("%s: could not publish the warm-up progress: %s", self.name, str(exc)[:200])
            if not self._again:
                return

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task


def warm_up_problem(report: Any, symbols: Sequence[str], timeframes: int) -> tuple[str, str] | None:
    """Why a start cannot go on after its warm-up: ("refused", text) when the exchange refused
    every symbol, ("failed", text) when no stream could be fetched; None when it can."""
    refused: Mapping[str, str] = report.refused
    if symbols and set(symbols) <= set(refused):
        return "refused", refusals(refused)
    refused_streams = sum(1 for s in symbols if s in refused) * timeframes
    if report.failed and len(report.failed) + refused_streams >= report.total:
        first = re.sub(r"^(ExchangeUnavailable|TransportError): ", "", str(next(iter(report.failed.values()))))
        return "failed", f"the warm-up could fetch none of {report.total} streams: {first}"
    return None


def refusals(refused: Mapping[str, str], shown: int = 5) -> str:
    """'A (reason); B (reason) and 3 more' for an answer or a status line."""
    items = [f"{sym} ({reason})" for sym, reason in sorted(refused.items())[:shown]]
    more = len(refused) - shown
    return "; ".join(items) + (f" and {more} more" if more > 0 else "")
