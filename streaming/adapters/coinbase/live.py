"""Coinbase market-data stream: candles + heartbeats on one WebSocket (imperative shell).

The pure CandleBook decides closes; the shared ReconnectingSocket connects, watches liveness and
reconnects. This module subscribes, checks acks, watches `sequence_num` and heartbeat gaps, bounds
every frame time by the trusted clock, closes quiet buckets by the exchange's clock, and after a
reconnect or a gap fills the gap over REST in the background (GapFills) while that symbol's live
candles wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import (
    ConnectionState,
    ExchangeConfig,
    LiveStream,
    StreamListener,
    live_stats,
    report_stream_health,
)
from streaming.adapters.clock import ExchangeClock, OpenTimeBound
from streaming.adapters.coinbase.candle_book import CandleBook
from streaming.adapters.coinbase.parse import FIVE_MINUTES_MS, CoinbaseMessage, parse_frame
from streaming.adapters.coinbase.rest import CoinbaseRest
from streaming.adapters.gapfill import GapFills
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.reconnect import ReconnectingSocket
from streaming.adapters.skips import BAD_TIMESTAMP, UNKNOWN_SYMBOL, BadFrame, SkipCounter
from streaming.adapters.staleness import StaleTracker, report
from streaming.adapters.supervise import LoopFailures, supervised
from streaming.adapters.symbols import split_valid
from streaming.models import Candle, CandleUpdate

log = logging.getLogger(__name__)

DEFAULT_GRACE_MS = 5_000
# a quiet bucket is closed by the clock no sooner than this many real seconds after its end, so
# the final update (sent up to one update tick after the end) arrives first at any clock speed
GRACE_FLOOR_S = 1.5
FRAME_INTERVAL_S = 1.0  # the candles channel sends a product's update every second
STALE_CHECK_S = 1.0

Held = tuple[str, Any]  # ("snapshot", list[Candle]) or ("update", Candle)


class CoinbaseLiveStream(LiveStream):
    def __init__(self, config: ExchangeConfig, rest: CoinbaseRest, symbols: Iterable[str],
                 listener: StreamListener, *, grace_ms: int | None = None, watchdog_s: float = 30.0,
                 clock_ms: Callable[[], int] | None = None, backoff: Backoff | None = None,
                 tick_s: float = 0.5, gapfill_concurrency: int = 8, stale_after_s: float = 60.0,
                 stale_clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self.rest = rest
        self.listener = listener
        self.grace_ms = grace_ms
        self.book = CandleBook(config.name, "5m", FIVE_MINUTES_MS, grace_ms or DEFAULT_GRACE_MS)
        self.skips = SkipCounter(log, f"{config.name} ws")
        self.counts: Counter[str] = Counter()
        self.failures = LoopFailures(f"{config.name} stream", listener, self.counts)
        self.clock = ExchangeClock(clock_ms)
        self.bound = OpenTimeBound(self.clock)
        self.tick_s = tick_s
        self.backoff = backoff or Backoff(0.5, 30.0)
        limits = config.api_limits
        self._send_bucket = TokenBucket(max(1.0, float(limits.get("ws_messages_per_second", 8)) - 1))
        self.socket = ReconnectingSocket(
            lambda: config.ws_url, listener, self.failures, watchdog_s=watchdog_s, backoff=self.backoff,
            connect_bucket=TokenBucket(float(limits.get("ws_connections_per_second", 8))))
        self.fills: GapFills[str, Held] = GapFills(self._fetch, self._apply_fill, self._route, listener,
                                                   self.failures, gapfill_concurrency)
        self._initial = list(symbols)
        self._symbols: set[str] = set()
        self._resync: set[str] = set()  # symbols whose gap must be filled before live resumes
        self._confirmed: dict[str, int] = {}  # symbol -> REST answered for every bucket before this
        # one entry per subscribe/unsubscribe sent, in order: each is answered by one ack
        self._pending_acks: list[set[str] | None] = []
        self._sends: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._expected_seq: int | None = None
        self._last_heartbeat: int | None = None
        self.staleness = (StaleTracker(stale_after_s, FRAME_INTERVAL_S) if stale_clock is None
                          else StaleTracker(stale_after_s, FRAME_INTERVAL_S, stale_clock))
        self._next_stale_check = 0.0
        self._clock_closed: dict[str, int] = {}  # symbol -> open time of its last bar closed by the clock

    # -- LiveStream API
    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    def stats(self) -> dict[str, Any]:
        out = live_stats(self.counts, self.book.counts, self.skips, len(self._symbols))
        out["frames"] = self.socket.frames
        out["gaps_unconfirmed"] = len(self.fills.unconfirmed)
        out.update({f"streams_{k}": v for k, v in self.staleness.counts.items()})
        return out

    def stale_streams(self) -> list[tuple[str, str]]:
        return self.staleness.stale()

    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = self._accept(symbols)
        ws = self.socket.ws
        if new and ws is not None:
            await self._send_subscribe(ws, new)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = [s for s in symbols if s in self._symbols]
        self.staleness.forget((sym, "5m") for sym in gone)
        for sym in gone:
            self._symbols.discard(sym)
            self._resync.discard(sym)
            # the last close is kept: a later re-subscribe fills the gap instead of re-closing history
            self.book.forming.pop(sym, None)
        self.fills.drop(lambda sym: sym in self._symbols)
        ws = self.socket.ws
        if gone and ws is not None:
            await self._send_unsubscribe(ws, gone)

    async def close(self) -> None:
        self._closed.set()
        await self.socket.stop()

    def hold_for_warm_up(self, symbols: Iterable[str]) -> None:
        for sym in symbols:
            self.fills.pause(sym)

    def waiting(self, symbol: str) -> bool:
        return symbol in self.fills.held or symbol in self._resync

    def warmed_up(self, symbol: str, timeframe: str, newest: int | None) -> None:
        if timeframe != self.book.timeframe:
            return
        if newest is not None and newest > (self.book.last_closed(symbol) or newest - 1):
            self.book.ledger.last_closed[(symbol, timeframe)] = newest
        if self.book.last_closed(symbol) is not None:
            self._resync.add(symbol)  # the first live item finds the bars since then missing
        self.fills.resume(symbol)

    async def run(self) -> None:
        self._accept(self._initial)
        ticker = asyncio.create_task(supervised("clock ticker", self._tick, self.failures, self.backoff.fresh(),
                                                self._closed))
        try:
            await self.socket.run(self._on_open, self._on_frame, self._on_close)
        finally:
            ticker.cancel()
            for task in list(self._sends):
                task.cancel()
            await asyncio.gather(ticker, *self._sends, return_exceptions=True)
            await self.fills.close()
            self.listener.on_state(ConnectionState.DISCONNECTED, "closed")

    # -- connection
    def _accept(self, symbols: Iterable[str]) -> list[str]:
        good, bad, reason = split_valid(symbols)
        if bad:
            self.counts["rejected"] += len(bad)
            self.listener.on_rejected(bad, reason)
        new = [s for s in good if s not in self._symbols]
        self._symbols.update(new)
        self.staleness.watch((s, "5m") for s in new)
        self._resync.update(s for s in new if self.book.last_closed(s) is not None)
        return new

    async def _send(self, ws: ClientConnection, message: dict[str, Any]) -> None:
        await self._send_bucket.acquire()
        await ws.send(orjson.dumps(message).decode())

    async def _send_subscribe(self, ws: ClientConnection, symbols: list[str]) -> None:
        self._pending_acks.append(set(symbols))
        await self._send(ws, {"type": "subscribe", "channel": "candles", "product_ids": symbols})

    async def _send_unsubscribe(self, ws: ClientConnection, symbols: list[str]) -> None:
        self._pending_acks.append(None)
        await self._send(ws, {"type": "unsubscribe", "channel": "candles", "product_ids": symbols})

    async def _on_open(self, ws: ClientConnection) -> None:
        self.staleness.touch(self.staleness.last_frame)
        self._expected_seq = None
        self._last_heartbeat = None
        self._pending_acks.clear()
        if self._symbols:
            await self._send_subscribe(ws, sorted(self._symbols))
        self._pending_acks.append(None)
        await self._send(ws, {"type": "subscribe", "channel": "heartbeats"})

    def _on_close(self) -> None:
        # until the gap is filled, no clock-closes with stale values
        self._resync |= self._symbols

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if self.socket.connected:
                ready = self._symbols - self._resync - self.fills.held.keys()
                closed = self.book.on_clock(self.clock.now_ms(), ready, self._grace_ms())
                for u in closed:
                    self._clock_closed[u.symbol] = u.candle.timestamp
                self._emit(closed)
            self._check_stale()

    def _check_stale(self) -> None:
        """Streams quiet on a live connection: reported and resubscribed. While the connection is
        down (or has sent nothing yet) the silence does not count."""
        now = asyncio.get_running_loop().time()
        if now < self._next_stale_check:
            return
        self._next_stale_check = now + STALE_CHECK_S
        tracker = self.staleness
        if not self.socket.live.is_set():
            tracker.touch(tracker.last_frame)
            return
        changes = tracker.check()
        if changes:
            report(changes, tracker, lambda sym, tf, stale, detail: report_stream_health(
                self.listener, sym, tf, stale, detail))
            if changes.resubscribe:
                symbols = [sym for sym, _ in changes.resubscribe]
                for sym in symbols:
                    # a bar the clock closed since its last frame was closed on a guess: fill it too
                    guessed = self._clock_closed.pop(sym, None)
                    if guessed is not None:
                        self.book.reopen(sym, guessed)
                self._resubscribe(symbols)

    def _grace_ms(self) -> int:
        """The configured grace, or by default 5 s of exchange time but never less than
        GRACE_FLOOR_S of real time (at 60x a 5 s grace is 83 ms, shorter than an update tick)."""
        if self.grace_ms is not None:
            return self.grace_ms
        return max(DEFAULT_GRACE_MS, self.clock.real_ms(GRACE_FLOOR_S))

    def _emit(self, updates: list[CandleUpdate]) -> None:
        for u in updates:
            self.listener.on_candle(u)

    # -- frames
    def _on_frame(self, raw: bytes) -> None:
        try:
            msg = parse_frame(raw)
        except BadFrame as bad:
            self.skips.skip(bad.kind, bad.detail)
            return
        self._handle(msg)

    def _handle(self, msg: CoinbaseMessage) -> None:
        if msg.seq is not None:
            expected = self._expected_seq
            if expected is not None and msg.seq > expected:
                self.counts["sequence_gaps"] += 1
                self.counts["lost_frames"] += msg.seq - expected
                self._resubscribe()
            elif expected is not None and msg.seq < expected:
                self.counts["stale_frames"] += 1
            self._expected_seq = max(expected or 0, msg.seq + 1)
        for bad in msg.bad:
            self.skips.skip(bad.kind, bad.detail)
        channel = msg.channel
        if channel == "heartbeats":
            self._on_heartbeat(msg)
        elif channel == "candles":
            for symbol, candles in msg.snapshots.items():
                self.staleness.frame((symbol, "5m"))
                history = [c for c in candles[:-1] if self._believable(symbol, c, True)]
                if self._believable(symbol, candles[-1], False):
                    history.append(candles[-1])
                if history:
                    self._route(symbol, ("snapshot", history))
            for symbol, candle in msg.updates:
                self.staleness.frame((symbol, "5m"))
                if self._believable(symbol, candle, False):
                    self._route(symbol, ("update", candle))
        elif channel == "subscriptions" and msg.subscriptions is not None:
            self._check_ack(msg.subscriptions)

    def _on_heartbeat(self, msg: CoinbaseMessage) -> None:
        if not self.clock.observe(msg.time_ms):
            self.skips.skip(BAD_TIMESTAMP, f"heartbeat time {msg.time_ms} ms is over a minute off our clock")
            return
        if msg.heartbeat is not None:
            if self._last_heartbeat is not None and msg.heartbeat > self._last_heartbeat + 1:
                self.counts["heartbeat_gaps"] += 1
            self._last_heartbeat = max(msg.heartbeat, self._last_heartbeat or 0)

    def _believable(self, symbol: str, candle: Candle, closed: bool) -> bool:
        if self.bound.ahead(candle.timestamp, FIVE_MINUTES_MS, closed):
            self.skips.skip(BAD_TIMESTAMP, f"{symbol} candle at {candle.timestamp} ms is ahead of our clock")
            return False
        return True

    def _route(self, symbol: str, item: Held) -> None:
        """One snapshot or update of `symbol`: held behind its gap fill, or into the book."""
        if symbol not in self._symbols:
            self.skips.skip(UNKNOWN_SYMBOL, symbol)
            return
        held = self.fills.held.get(symbol)
        kind, value = item
        if held is not None:
            last = held[-1] if held else None
            if kind == "update" and last is not None and last[0] == "update" and last[1].timestamp == value.timestamp:
                held[-1] = item  # a newer update of the same bucket supersedes the held one
            else:
                held.append(item)
            return
        live_ts = max(c.timestamp for c in value) if kind == "snapshot" else value.timestamp
        if symbol in self._resync:
            self._resync.discard(symbol)
            start = self._gap_start(symbol, live_ts)
            if start is not None:
                self.fills.start(symbol, start, live_ts, item)
                return
        elif kind == "update":
            start = self._quiet_start(symbol, live_ts)
            if start is not None:
                self.fills.start(symbol, start, live_ts, item)
                return
        self._emit(self.book.snapshot(symbol, value) if kind == "snapshot" else self.book.update(symbol, value))

    def _quiet_start(self, symbol: str, live_ts: int) -> int | None:
        """On an open connection, buckets skipped between the previous candle and `live_ts` are
        quiet ones: the exchange's REST confirms them (no candle = no trades) before the pipeline
        may fill them flat. Closes the previous bucket first (a later start closes it anyway)."""
        current = self.book.forming.get(symbol)
        prev = current.timestamp if current is not None else self.book.last_closed(symbol)
        if prev is None or live_ts <= max(prev + FIVE_MINUTES_MS, self._confirmed.get(symbol, 0)):
            return None
        if current is not None:
            self._emit(self.book.close_forming(symbol))
        return prev + FIVE_MINUTES_MS

    def _gap_start(self, symbol: str, live_ts: int) -> int | None:
        """Open time of the first 5m bar between the last close and the live bucket `live_ts`."""
        start = self.book.gap_start(symbol, live_ts)
        current = self.book.forming.get(symbol)
        if start is None and self.book.last_closed(symbol) is None and current is not None \
                and current.timestamp < live_ts:
            start = current.timestamp
        return start if start is not None and start < live_ts else None

    async def _fetch(self, symbol: str, start: int, end: int) -> list[Candle]:
        return await self.rest.candles(symbol, "5m", start, end)

    def _apply_fill(self, symbol: str, candles: list[Candle] | None, end: int) -> None:
        if candles is not None:
            self._emit(self.book.fill(symbol, candles))
            self._confirmed[symbol] = max(end, self._confirmed.get(symbol, 0))

    def _check_ack(self, subscriptions: dict[str, list[str]]) -> None:
        if not self._pending_acks:
            return
        asked = self._pending_acks.pop(0)
        if asked is None:
            return
        refused = sorted(asked - set(subscriptions.get("candles", [])))
        if refused:
            self.staleness.forget((sym, "5m") for sym in refused)
            for sym in refused:
                self._symbols.discard(sym)
                self._resync.discard(sym)
            self.counts["rejected"] += len(refused)
            self.listener.on_rejected(refused, f"{self.config.name} did not accept these product ids")

    def _resubscribe(self, only: list[str] | None = None) -> None:
        """Lost frames (or, with `only`, stale streams): a fresh snapshot plus a REST fill brings
        the symbols back in line. The messages go out from a task: sends wait on the rate limit,
        the receive loop must not."""
        symbols = sorted(self._symbols if only is None else self._symbols.intersection(only))
        self._resync.update(symbols)
        ws = self.socket.ws
        if not symbols or ws is None:
            return
        self.counts["resubscribes"] += 1

        async def send() -> None:
            with contextlib.suppress(WebSocketException):
                await self._send_unsubscribe(ws, symbols)
                await self._send_subscribe(ws, symbols)

        task = asyncio.create_task(send())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
