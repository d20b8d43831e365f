"""ExchangeSession: one exchange served by this worker (adapter, pipeline, warm-up, live stream).

The adapter calls the listener synchronously from its read loop; state changes are queued and
published in order by a task of their own so the read loop never waits on Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from streaming.adapters.base import AdapterError, ConnectionState, ExchangeAdapter, StreamListener
from streaming.models import CandleUpdate
from streaming.ratelog import RateLimitedLog
from streaming.timeframes import TIMEFRAMES
from streaming.worker.publisher import StatusPublisher
from streaming.worker.universe import Pools, diff_pools

log = logging.getLogger(__name__)


class StartFailed(Exception):
    pass


class _Bridge:
    """The StreamListener handed to the adapter: candles to the pipeline, states to the session."""

    def __init__(self, session: ExchangeSession, downstream: StreamListener | None) -> None:
        self.session = session
        self.downstream = downstream
        self.rejected_log = RateLimitedLog(log, 30.0)

    def on_candle(self, update: CandleUpdate) -> None:
        self.session.last_frame = time.time()
        if self.downstream is not None:
            self.downstream.on_candle(update)

    def on_state(self, state: ConnectionState, detail: str | None = None) -> None:
        if self.downstream is not None:
            with contextlib.suppress(Exception):
                self.downstream.on_state(state, detail)
        self.session.states.put_nowait((state, detail))

    def on_rejected(self, symbols: list[str], reason: str) -> None:
        self.session.rejected.update(symbols)
        if self.downstream is not None:
            with contextlib.suppress(Exception):
                self.downstream.on_rejected(symbols, reason)
        self.rejected_log.warning("rejected", "%s refused %d symbol(s) %s: %s", self.session.name, len(symbols),
                                  ", ".join(symbols[:10]), reason[:200])


def live_timeframes(adapter: ExchangeAdapter) -> list[str]:
    """The timeframes to subscribe natively, as the adapter declares them; the pipeline
    aggregates the rest."""
    return [tf for tf in TIMEFRAMES if tf in adapter.native_timeframes]


class ExchangeSession:
    def __init__(self, row: Mapping[str, Any], redis: aioredis.Redis, publisher: StatusPublisher, *,
                 warm_up: bool = True, connect_timeout_s: float = 60.0) -> None:
        self.row = dict(row)
        self.name: str = row["name"]
        self.exchange_id: int = row["id"]
        self.redis = redis
        self.publisher = publisher
        self.warm_up_enabled = warm_up
        self.connect_timeout_s = connect_timeout_s
        self.pools: Pools = {}
        self.states: asyncio.Queue[tuple[ConnectionState, str | None]] = asyncio.Queue()
        self.rejected: set[str] = set()
        self.last_frame: float | None = None
        self._frames_seen: int | None = None
        self.warm_up_progress: tuple[int, int] = (0, 0)
        self.warm_up_report: dict[str, Any] = {}
        self.adapter: Any = None
        self.pipeline: Any = None
        self.stream: Any = None
        self._tasks: list[asyncio.Task] = []
        self._stream_task: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._stopping = False

    @property
    def state(self) -> str:
        return self.publisher.state.value

    # -- lifecycle
    async def start(self, pools: Pools) -> dict[str, Any]:
        """Warm up, connect, and return once connected; raise StartFailed with the reason otherwise."""
        from streaming.adapters.factory import build_adapter

        self.pools = dict(pools)
        await self.publisher.set_state(ConnectionState.CONNECTING, "warming up" if self.warm_up_enabled else None,
                                       {"symbols": len(self.pools)})
        self._tasks.append(asyncio.create_task(self._publish_states(), name=f"{self.name}-states"))
        try:
            self.adapter = build_adapter(self.row)
            self.pipeline = _make_pipeline(self.redis, self.exchange_id, self.name, self.pools, self.adapter)
            self._tasks.append(asyncio.create_task(self.pipeline.run(), name=f"{self.name}-pipeline"))
            symbols = sorted(self.pools)
            if self.warm_up_enabled and symbols:
                report = await self.pipeline.warm_up(self.adapter, symbols, list(TIMEFRAMES), self._progress)
                self.warm_up_report = {"candles": report.candles, "refused": dict(report.refused),
                                       "failed": len(report.failed), "short": len(report.short)}
                for sym in report.refused:
                    self.rejected.add(sym)
            if symbols:
                await self._open_stream(symbols)
                await self._wait_connected()
        except (AdapterError, StartFailed, TimeoutError, OSError) as exc:
            raise StartFailed(f"connect failed: {_reason(exc)}") from None
        return self.describe()

    async def _open_stream(self, symbols: list[str]) -> None:
        bridge = _Bridge(self, getattr(self.pipeline, "listener", None))
        self.stream = self.adapter.live(symbols, live_timeframes(self.adapter), bridge)
        self._stream_task = asyncio.create_task(self.stream.run(), name=f"{self.name}-live")

    async def _wait_connected(self) -> None:
        assert self._stream_task is not None
        waiter = asyncio.create_task(self._connected.wait())
        done, _ = await asyncio.wait({waiter, self._stream_task}, timeout=self.connect_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            return
        waiter.cancel()
        if self._stream_task in done:
            exc = self._stream_task.exception()
            raise StartFailed(f"the live stream ended: {_reason(exc) if exc else 'closed'}")
        last = self.publisher.last_error or "no answer"
        raise StartFailed(f"not connected within {self.connect_timeout_s:g}s ({last})")

    def _progress(self, done: int, total: int) -> None:
        self.warm_up_progress = (done, total)

    async def _publish_states(self) -> None:
        while True:
            state, detail = await self.states.get()
            if self._stopping and state != ConnectionState.CONNECTED:
                continue  # the stop publishes the final state itself
            if state == ConnectionState.CONNECTED:
                self._connected.set()
            try:
                await self.publisher.set_state(state, detail, {"symbols": len(self.pools)})
            except Exception as exc:  # Redis hiccup: the next state change retries
                log.warning("%s: could not publish state %s: %s", self.name, state.value, _reason(exc))

    async def reload(self, pools: Pools) -> dict[str, Any]:
        """Subscribe/unsubscribe the difference on the open connection(s); never reconnects."""
        diff = diff_pools(self.pools, pools)
        self.pools = dict(pools)
        if self.pipeline is not None and hasattr(self.pipeline, "set_pools"):
            self.pipeline.set_pools(symbol_pools(pools))
        if self.stream is None and pools:
            await self._open_stream(sorted(pools))
        elif self.stream is not None:
            if diff.removed:
                await self.stream.unsubscribe(list(diff.removed))
            if diff.added:
                await self.stream.subscribe(list(diff.added))
        if diff.added and self.warm_up_enabled and self.pipeline is not None:
            # history for the new symbols, without holding up the command's answer
            self._tasks.append(asyncio.create_task(
                self.pipeline.warm_up(self.adapter, list(diff.added), list(TIMEFRAMES), self._progress)))
        return {"added": list(diff.added), "removed": list(diff.removed), "moved": list(diff.moved),
                "symbols": len(self.pools)}

    async def stop(self, reason: str, final: ConnectionState = ConnectionState.IDLE) -> None:
        self._stopping = True
        if self.stream is not None:
            with contextlib.suppress(Exception):
                await self.stream.close()
        if self._stream_task is not None:
            try:
                await asyncio.wait_for(self._stream_task, 10)
            except (TimeoutError, asyncio.CancelledError, Exception):
                self._stream_task.cancel()
        if self.pipeline is not None:
            try:  # closed candles already received are stored and published before we go
                await asyncio.wait_for(self.pipeline.drain(), 10)
                await asyncio.wait_for(self.pipeline.close(), 10)
            except Exception as exc:
                log.warning("%s: pipeline close: %s", self.name, _reason(exc))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks.clear()
        if self.adapter is not None:
            with contextlib.suppress(Exception):
                await self.adapter.aclose()
        await self.publisher.set_state(final, reason)

    async def beat(self) -> None:
        """Copy the time of the last frame into the status hash: how fresh the connection is."""
        if self.stream is not None:
            # heartbeat frames never reach the listener; the adapter's frame counter shows them
            with contextlib.suppress(Exception):
                frames = self.stream.stats().get("frames")
                if isinstance(frames, int) and frames != self._frames_seen:
                    self._frames_seen = frames
                    self.last_frame = time.time()
        if self.last_frame is not None and self.state == ConnectionState.CONNECTED.value:
            await self.publisher.heartbeat(self.last_frame)
        else:
            # not connected ourselves: a connected peer that died must still stop counting
            await self.publisher.refresh()

    def describe(self) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        if self.stream is not None:
            with contextlib.suppress(Exception):
                stats = self.stream.stats()
        return {
            "exchange": self.name, "exchange_id": self.exchange_id, "state": self.state,
            "symbols": len(self.pools), "connected_at": self.publisher.connected_at,
            "last_heartbeat": self.publisher.last_heartbeat, "last_error": self.publisher.last_error,
            "rejected": sorted(self.rejected),
            "warm_up": {"progress": list(self.warm_up_progress), **self.warm_up_report},
            "stream": stats,
        }


def _make_pipeline(redis: aioredis.Redis, exchange_id: int, name: str, pools: Pools, adapter: Any) -> Any:
    from streaming.pipeline import CandlePipeline

    # with the adapter, aggregated closes are reconciled against the exchange's own REST candles
    return CandlePipeline(redis, exchange_id, name, symbol_pools=symbol_pools(pools), timeframes=list(TIMEFRAMES),
                          adapter=adapter, native_timeframes=adapter.native_timeframes)


def symbol_pools(pools: Pools) -> dict[str, Any]:
    """Our symbol -> users mapping in the pipeline's terms (SymbolPool)."""
    from streaming.pipeline.config import SymbolPool

    return {s: SymbolPool("user", users) if users else SymbolPool() for s, users in pools.items()}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
