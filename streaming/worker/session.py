"""ExchangeSession: one exchange served by this worker (adapter, pipeline, warm-up, live stream).

The adapter calls the listener synchronously from its read loop; state changes are queued and
published in order by a task of their own so the read loop never waits on Redis.

What the session says about itself is kept true at every heartbeat (streaming.worker.health:
"connected" only while frames arrive, a task that ends on its own is reported and restarted). A
start fails within seconds with the cause when the warm-up could fetch nothing, when the
connection fails CONNECT_ATTEMPTS times in a row, or when the exchange refused every symbol.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from streaming.adapters.base import AdapterError, ConnectionState, ExchangeAdapter, StreamListener
from streaming.contracts.workers import WarmUpProgress
from streaming.models import CandleUpdate
from streaming.ratelog import RateLimitedLog
from streaming.timeframes import TIMEFRAMES
from streaming.worker.health import SessionHealth
from streaming.worker.measure import ExchangeMeasure
from streaming.worker.progress import WarmUpReporter, refusals, warm_up_problem
from streaming.worker.publisher import StatusPublisher
from streaming.worker.universe import Pools, diff_pools

if TYPE_CHECKING:
    from streaming.pipeline import CandlePipeline
    from streaming.pipeline.config import SymbolPool

log = logging.getLogger(__name__)

CONNECT_ATTEMPTS = 3  # failed connects in a row that fail a start (seconds, not the connect timeout)
_RECONNECTING = re.compile(r"; reconnecting in [0-9.]+s$")


class StartFailed(Exception):
    pass


class NothingToServe(StartFailed):
    """The exchange refused every symbol: the reason is the refusals, not the connection."""


class _Bridge:
    """The StreamListener handed to the adapter: candles to the pipeline, states to the session."""

    def __init__(self, session: ExchangeSession, downstream: StreamListener | None) -> None:
        self.session = session
        self.downstream = downstream
        self.rejected_log = RateLimitedLog(log, 30.0)

    def on_candle(self, update: CandleUpdate) -> None:
        self.session.last_frame = time.time()
        if self.session.settling is not None:
            self.session.settling.add(update.symbol)
        if self.downstream is not None:
            self.downstream.on_candle(update)

    def on_state(self, state: ConnectionState, detail: str | None = None) -> None:
        if self.downstream is not None:
            with contextlib.suppress(Exception):
                self.downstream.on_state(state, detail)
        self.session.states.put_nowait((state, detail))

    def on_stream_health(self, symbol: str, timeframe: str, stale: bool, detail: str) -> None:
        self.session.stream_events.put_nowait((symbol, timeframe, stale, detail))

    def on_rejected(self, symbols: list[str], reason: str) -> None:
        for sym in symbols:
            self.session.refused[sym] = reason[:200]
        if self.session.pools and set(self.session.pools) <= self.session.refused.keys():
            self.session.nothing_left.set()  # e.g. Binance refuses before it opens any connection
        if self.downstream is not None:
            with contextlib.suppress(Exception):
                self.downstream.on_rejected(symbols, reason)
        self.rejected_log.warning("rejected", "%s refused %d symbol(s) %s: %s", self.session.name, len(symbols),
                                  ", ".join(symbols[:10]), reason[:200])


def live_timeframes(adapter: ExchangeAdapter) -> list[str]:
    """The timeframes to subscribe natively, as the adapter declares them; the pipeline
    aggregates the rest."""
    return [tf for tf in TIMEFRAMES if tf in adapter.native_timeframes]


class ExchangeSession(SessionHealth):
    def __init__(self, row: Mapping[str, Any], redis: aioredis.Redis, publisher: StatusPublisher, *,
                 warm_up: bool = True, connect_timeout_s: float = 60.0,
                 on_progress: Callable[[], None] | None = None, measure: ExchangeMeasure | None = None) -> None:
        self.row = dict(row)
        self.name: str = row["name"]
        self.exchange_id: int = row["id"]
        self.redis = redis
        self.publisher = publisher
        self.warm_up_enabled = warm_up
        self.connect_timeout_s = connect_timeout_s
        self.pools: Pools = {}
        self.states: asyncio.Queue[tuple[ConnectionState, str | None]] = asyncio.Queue()
        # (symbol, timeframe, stale, detail) as the live stream reports them
        self.stream_events: asyncio.Queue[tuple[str, str, bool, str]] = asyncio.Queue()
        self.measure = measure or ExchangeMeasure(self.name, self.exchange_id)
        self.measure.session = self  # its parts are read live until it stops
        self.refused: dict[str, str] = {}  # symbol -> the exchange's reason
        self.last_frame: float | None = None
        self.settling: set[str] | None = None  # while a start waits for answers: symbols that streamed
        self._frames_seen: int | None = None
        self._frames_at_failure: int | None = None  # frame count when a loop failed on an open connection
        self.warm_up = WarmUpReporter(self.name, publisher, on_progress)
        self.warm_up_report: dict[str, Any] = {}
        self._warm_up_requests = 0  # REST candle requests of every warm-up of this session
        self._rest_requests: int | None = None  # every REST request the start made
        self._failed_connects = 0
        self._last_failure = ""
        self._connect_failed = asyncio.Event()
        self.nothing_left = asyncio.Event()  # the exchange refused every symbol
        self._restarts = 0
        self._restart_at: dict[str, float] = {}  # task name -> when to start it again
        self.adapter: Any = None
        self.pipeline: CandlePipeline | None = None
        self.stream: Any = None
        self._tasks: list[asyncio.Task] = []
        self._stream_task: asyncio.Task | None = None
        self._pipeline_task: asyncio.Task | None = None
        self.started = False  # the start went through: from now on `beat` looks after the tasks
        self._connected = asyncio.Event()
        self._stopping = False

    # -- lifecycle
    async def start(self, pools: Pools) -> dict[str, Any]:
        """Warm up, connect, and return once connected; raise StartFailed with the reason otherwise."""
        from streaming.adapters.factory import build_adapter

        self.pools = dict(pools)
        await self.publisher.set_state(ConnectionState.CONNECTING, "warming up" if self.warm_up_enabled else None,
                                       {"symbols": len(self.pools)})
        self._tasks.append(asyncio.create_task(self._publish_states(), name=f"{self.name}-states"))
        self._tasks.append(asyncio.create_task(self._publish_stream_events(), name=f"{self.name}-stream-events"))
        try:
            self.adapter = build_adapter(self.row)
            self.pipeline = _make_pipeline(self.redis, self.exchange_id, self.name, self.pools, self.adapter,
                                           self.measure)
            self._start_pipeline()
            symbols = sorted(self.pools)
            warm = self.warm_up_enabled and bool(symbols)
            # live first, history second: the stream holds each symbol's frames until its history
            # is stored, then fills from the exchange whatever closed in between
            until_ms = self.pipeline.config.clock_ms()
            rest_before = _rest_requests(self.adapter)
            if symbols:
                self.settling = set()
                await self._open_stream(symbols, hold=symbols if warm else ())
            if warm:
                self.warm_up.begin(len(symbols) * len(TIMEFRAMES))
                report = await self.pipeline.warm_up(self.adapter, symbols, list(TIMEFRAMES), self.warm_up.step,
                                                     until_ms=until_ms, ready=self.stream.warmed_up)
                self._warm_up_ends(report, symbols)
                self.warm_up_report["until_ms"] = until_ms
            if symbols:
                await self._wait_connected()
                await self._settle_refusals(symbols)
            self._rest_requests = _rest_requests(self.adapter) - rest_before
        except NothingToServe as exc:
            raise StartFailed(_reason(exc)) from None
        except (AdapterError, StartFailed, TimeoutError, OSError) as exc:
            raise StartFailed(f"connect failed: {_reason(exc)}") from None
        self.started = True
        gc.freeze()  # the adapter's modules and the loaded streams: see streaming.worker.main
        return self.describe()

    def _start_pipeline(self) -> None:
        assert self.pipeline is not None, "the pipeline is built before it starts"
        self._pipeline_task = asyncio.create_task(self.pipeline.run(), name=f"{self.name}-pipeline")
        self._tasks.append(self._pipeline_task)

    async def _open_stream(self, symbols: list[str], hold: list[str] | tuple[str, ...] = ()) -> None:
        """Start the live stream of `symbols`; the frames of those in `hold` wait for their warm-up."""
        if self.stream is not None:  # a restart: the counts of the stream it replaces are kept
            self.measure.retire(stream=self.stream)
        bridge = _Bridge(self, self.pipeline.listener if self.pipeline is not None else None)
        self.stream = self.adapter.live(symbols, live_timeframes(self.adapter), bridge)
        if self.pipeline is not None:
            self.pipeline.waiting = self.stream.waiting
        if hold:
            self.stream.hold_for_warm_up(hold)
        self._stream_task = asyncio.create_task(self.stream.run(), name=f"{self.name}-live")

    async def _wait_connected(self) -> None:
        """Return once frames arrive; StartFailed with the cause after CONNECT_ATTEMPTS failed
        connects in a row, when the stream ends, or after the connect timeout."""
        assert self._stream_task is not None
        waiter = asyncio.create_task(self._connected.wait())
        failed = asyncio.create_task(self._connect_failed.wait())
        refused = asyncio.create_task(self.nothing_left.wait())
        done, _ = await asyncio.wait({waiter, failed, refused, self._stream_task}, timeout=self.connect_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        for task in (waiter, failed, refused):
            task.cancel()
        if waiter in done or refused in done:
            return  # _settle_refusals says what was refused
        if self._stream_task in done:
            exc = self._stream_task.exception()
            raise StartFailed(f"the live stream ended: {_reason(exc) if exc else 'closed'}")
        if failed in done:
            raise StartFailed(f"{self._last_failure} ({self._failed_connects} attempts)")
        last = self.publisher.last_error or "no answer"
        raise StartFailed(f"not connected within {self.connect_timeout_s:g}s ({last})")

    async def _settle_refusals(self, symbols: list[str], wait_s: float = 3.0) -> None:
        """Refusals arrive with the exchange's answer to the subscription, a few frames after
        the first: wait until every symbol streamed a candle or was refused, at most `wait_s`;
        NothingToServe when nothing is left to stream."""
        deadline = time.monotonic() + wait_s
        seen = self.settling if self.settling is not None else set()
        try:
            while time.monotonic() < deadline and not set(symbols) <= seen | self.refused.keys():
                await asyncio.sleep(0.05)
        finally:
            self.settling = None
        if set(symbols) <= self.refused.keys():
            raise NothingToServe(f"no usable symbol: {self.name} refused {refusals(self.refused)}")

    # -- warm-up
    def _warm_up_ends(self, report: Any, symbols: list[str]) -> None:
        self._warm_up_requests += report.requests
        self.warm_up_report = {"candles": report.candles, "refused": dict(report.refused),
                               "failed": len(report.failed), "short": len(report.short),
                               "requests": report.requests}
        for sym, reason in report.refused.items():
            self.refused[sym] = str(reason)[:200]
        self.warm_up.end(report.candles, report.requests)
        problem = warm_up_problem(report, symbols, len(TIMEFRAMES))
        if problem is not None and problem[0] == "refused":
            raise NothingToServe(f"no usable symbol: {self.name} refused {problem[1]}")
        if problem is not None:
            raise StartFailed(problem[1])

    def progress(self) -> WarmUpProgress | None:
        """The warm-up's progress while it runs (for the heartbeat), else None."""
        return self.warm_up.current()

    async def _publish_states(self) -> None:
        while True:
            state, detail = await self.states.get()
            if self._stopping:
                continue  # the stop publishes the final state itself
            if state == ConnectionState.CONNECTED:
                self._failed_connects = 0
                self._frames_at_failure = None
            elif state in (ConnectionState.DISCONNECTED, ConnectionState.ERROR):
                if self._connected.is_set():  # frames counted from here on mean it streams again
                    self._frames_at_failure = self._frame_count()
                elif detail:  # the start is still waiting for its first frame
                    self._failed_connects += 1
                    self._last_failure = _RECONNECTING.sub("", detail)
                    if self._failed_connects >= CONNECT_ATTEMPTS:
                        self._connect_failed.set()
            try:
                await self.publisher.set_state(state, detail, {"symbols": len(self.pools)})
            except Exception as exc:  # Redis hiccup: the next state change retries
                log.warning("%s: could not publish state %s: %s", self.name, state.value, _reason(exc))
            if state == ConnectionState.CONNECTED:
                # only now: a start that returns on it finds its status hash saying so already
                self._connected.set()

    async def _publish_stream_events(self) -> None:
        while True:
            symbol, timeframe, stale, detail = await self.stream_events.get()
            if self._stopping:
                continue
            count = len(self.stream.stale_streams()) if self.stream is not None else 0
            try:
                await self.publisher.stream_health(symbol, timeframe, stale, detail, count)
            except Exception as exc:  # Redis hiccup: the next event (or beat) says it again
                log.warning("%s: could not publish the health of %s %s: %s", self.name, symbol, timeframe,
                            _reason(exc))

    async def reload(self, pools: Pools) -> dict[str, Any]:
        """Subscribe/unsubscribe the difference on the open connection(s); never reconnects."""
        diff = diff_pools(self.pools, pools)
        self.pools = dict(pools)
        # a symbol no longer served is no longer refused (added back, it is tried again)
        self.refused = {sym: why for sym, why in self.refused.items() if sym in self.pools}
        if self.pipeline is not None:
            self.pipeline.set_pools(symbol_pools(pools))
        warm = bool(diff.added) and self.warm_up_enabled and self.pipeline is not None
        until_ms = self.pipeline.config.clock_ms() if warm and self.pipeline is not None else None
        if self.stream is None and pools:
            await self._open_stream(sorted(pools), hold=list(diff.added) if warm else ())
        elif self.stream is not None:
            if diff.removed:
                await self.stream.unsubscribe(list(diff.removed))
            if diff.added:
                if warm:  # as at the start: the new symbols' frames wait for their history
                    self.stream.hold_for_warm_up(list(diff.added))
                await self.stream.subscribe(list(diff.added))
        if warm and self.pipeline is not None:
            # history for the new symbols, without holding up the command's answer
            self.warm_up.begin(len(diff.added) * len(TIMEFRAMES))
            self._tasks.append(asyncio.create_task(self._reload_warm_up(self.pipeline, list(diff.added), until_ms)))
        answer: dict[str, Any] = {"added": list(diff.added), "removed": list(diff.removed),
                                  "moved": list(diff.moved), "symbols": len(self.pools)}
        if until_ms is not None:
            answer["until_ms"] = until_ms  # the new symbols' bars closed later come from the live stream
        return answer

    async def _reload_warm_up(self, pipeline: CandlePipeline, symbols: list[str], until_ms: int | None) -> None:
        ready = self.stream.warmed_up if self.stream is not None else None
        report = await pipeline.warm_up(self.adapter, symbols, list(TIMEFRAMES), self.warm_up.step,
                                        until_ms=until_ms, ready=ready)
        self._warm_up_requests += report.requests
        self.warm_up.end(report.candles, report.requests)

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
        await self.warm_up.aclose()
        if self.adapter is not None:
            with contextlib.suppress(Exception):
                await self.adapter.aclose()
        self.measure.retire(stream=self.stream, adapter=self.adapter, pipeline=self.pipeline, session=self)
        await self.publisher.set_state(final, reason, final=True)

    def describe(self) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        stale: list[str] = []
        if self.stream is not None:
            with contextlib.suppress(Exception):
                stats = self.stream.stats()
                stale = sorted(f"{sym}:{tf}" for sym, tf in self.stream.stale_streams())
        warm_up: dict[str, Any] = {**self.warm_up_report, **self.warm_up.summary()}
        return {
            "exchange": self.name, "exchange_id": self.exchange_id, "state": self.state,
            "symbols": len(self.pools), "connected_at": self.publisher.connected_at,
            "last_heartbeat": self.publisher.last_heartbeat, "last_error": self.publisher.last_error,
            "accepted": sorted(set(self.pools) - self.refused.keys()),
            "refused": dict(sorted(self.refused.items())),
            "rejected": sorted(self.refused),
            "warm_up": warm_up,
            "warmup_requests": self._warm_up_requests,
            "rest_requests": self._rest_requests,
            "stream": stats,
            "stale": stale,
        }


def _make_pipeline(redis: aioredis.Redis, exchange_id: int, name: str, pools: Pools,
                   adapter: ExchangeAdapter, measure: ExchangeMeasure) -> CandlePipeline:
    from streaming.pipeline import CandlePipeline

    # with the adapter, aggregated closes are reconciled against the exchange's own REST candles
    return CandlePipeline(redis, exchange_id, name, symbol_pools=symbol_pools(pools), timeframes=list(TIMEFRAMES),
                          adapter=adapter, native_timeframes=adapter.native_timeframes, meter=measure.closes)


def symbol_pools(pools: Pools) -> dict[str, SymbolPool]:
    """Our symbol -> users mapping in the pipeline's terms (SymbolPool)."""
    from streaming.pipeline.config import SHARED, SymbolPool

    # one shared pool object for all shared symbols (most of them), not one each
    return {s: SymbolPool("user", users) if users else SHARED for s, users in pools.items()}


def _rest_requests(adapter: Any) -> int:
    """HTTP requests the adapter's REST client sent so far (0 when it does not count them)."""
    rest = getattr(adapter, "rest", None)
    total = 0
    for client in vars(rest).values() if rest is not None else ():
        counts = getattr(client, "counts", None)  # each HttpClient of the REST client
        if isinstance(counts, Mapping):
            total += int(counts.get("requests", 0))
    return total


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]
