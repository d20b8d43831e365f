"""Coinbase market-data stream: candles + heartbeats on one WebSocket (imperative shell).

The pure CandleBook decides closes; this module connects, subscribes, checks acks, watches
liveness (no-message watchdog, sequence_num and heartbeat_counter gaps), reconnects with
backoff, and after a reconnect or a gap resubscribes and backfills the gap over REST before
the symbol's live closes resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import (
    AdapterError,
    ConnectionState,
    ExchangeConfig,
    LiveStream,
    StreamListener,
    live_stats,
)
from streaming.adapters.clock import ExchangeClock
from streaming.adapters.coinbase.candle_book import CandleBook
from streaming.adapters.coinbase.parse import FIVE_MINUTES_MS, CoinbaseMessage, parse_frame
from streaming.adapters.coinbase.rest import CoinbaseRest
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.skips import UNKNOWN_SYMBOL, BadFrame, SkipCounter
from streaming.adapters.symbols import split_valid
from streaming.models import CandleUpdate

log = logging.getLogger(__name__)


class _Reconnect(Exception):
    pass


class CoinbaseLiveStream(LiveStream):
    def __init__(self, config: ExchangeConfig, rest: CoinbaseRest, symbols: Iterable[str],
                 listener: StreamListener, *, grace_ms: int = 5_000, watchdog_s: float = 30.0,
                 clock_ms: Callable[[], int] | None = None, backoff: Backoff | None = None,
                 tick_s: float = 0.5) -> None:
        self.config = config
        self.rest = rest
        self.listener = listener
        self.book = CandleBook(config.name, "5m", FIVE_MINUTES_MS, grace_ms)
        self.skips = SkipCounter(log, f"{config.name} ws")
        self.counts: Counter[str] = Counter()
        self.clock = ExchangeClock(clock_ms)
        self.watchdog_s = watchdog_s
        self.tick_s = tick_s
        self.backoff = backoff or Backoff(0.5, 30.0)
        limits = config.api_limits
        self._send_bucket = TokenBucket(max(1.0, float(limits.get("ws_messages_per_second", 8)) - 1))
        self._connect_bucket = TokenBucket(float(limits.get("ws_connections_per_second", 8)))
        self._initial = list(symbols)
        self._symbols: set[str] = set()
        self._resync: set[str] = set()  # symbols whose gap must be backfilled before live resumes
        # one entry per subscribe/unsubscribe sent, in order: each is answered by one ack
        self._pending_acks: list[set[str] | None] = []
        self._ws: ClientConnection | None = None
        self._closed = asyncio.Event()
        self._expected_seq: int | None = None
        self._last_heartbeat: int | None = None
        self._connected = False

    # -- LiveStream API
    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    def stats(self) -> dict[str, Any]:
        return live_stats(self.counts, self.book.counts, self.skips, len(self._symbols))

    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = self._accept(symbols)
        if new and self._ws is not None and self._connected:
            await self._send_subscribe(self._ws, new)

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = [s for s in symbols if s in self._symbols]
        for sym in gone:
            self._symbols.discard(sym)
            self._resync.discard(sym)
            # the last close is kept: a later re-subscribe backfills the gap instead of re-closing history
            self.book.forming.pop(sym, None)
        if gone and self._ws is not None and self._connected:
            await self._send_unsubscribe(self._ws, gone)

    async def close(self) -> None:
        self._closed.set()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def run(self) -> None:
        self._accept(self._initial)
        while not self._closed.is_set():
            await self._connect_bucket.acquire()
            self.listener.on_state(ConnectionState.CONNECTING, self.config.ws_url)
            reason = "closed"
            try:
                async with connect(self.config.ws_url, max_size=2**22, open_timeout=10,
                                   close_timeout=2, ping_interval=20, ping_timeout=20) as ws:
                    self._ws = ws
                    await self._session(ws)
            except (OSError, TimeoutError, WebSocketException, _Reconnect) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
            except asyncio.CancelledError:
                raise
            finally:
                self._ws = None
                self._connected = False
                # until the gap is backfilled, no clock-closes with stale values
                self._resync |= self._symbols
            if self._closed.is_set():
                break
            self.counts["reconnects"] += 1
            delay = self.backoff.next_delay()
            self.listener.on_state(ConnectionState.DISCONNECTED, f"{reason}; reconnecting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
        self.listener.on_state(ConnectionState.DISCONNECTED, "closed")

    # -- internals
    def _accept(self, symbols: Iterable[str]) -> list[str]:
        good, bad, reason = split_valid(symbols)
        if bad:
            self.counts["rejected"] += len(bad)
            self.listener.on_rejected(bad, reason)
        new = [s for s in good if s not in self._symbols]
        self._symbols.update(new)
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

    async def _session(self, ws: ClientConnection) -> None:
        self._expected_seq = None
        self._last_heartbeat = None
        self._pending_acks.clear()
        if self._symbols:
            await self._send_subscribe(ws, sorted(self._symbols))
        self._pending_acks.append(None)
        await self._send(ws, {"type": "subscribe", "channel": "heartbeats"})
        self._connected = True
        self.listener.on_state(ConnectionState.CONNECTED, self.config.ws_url)
        ticker = asyncio.create_task(self._tick())
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(decode=False), self.watchdog_s)
                except TimeoutError:
                    self.counts["watchdog_timeouts"] += 1
                    raise _Reconnect(f"no message for {self.watchdog_s:.0f}s") from None
                self.counts["frames"] += 1
                try:
                    msg = parse_frame(raw)
                except BadFrame as bad:
                    self.skips.skip(bad.kind, bad.detail)
                    continue
                self.backoff.reset()
                await self._handle(ws, msg)
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if self._connected:
                self._emit(self.book.on_clock(self.clock.now_ms(), self._symbols - self._resync))

    def _emit(self, updates: list[CandleUpdate]) -> None:
        for u in updates:
            self.listener.on_candle(u)

    async def _handle(self, ws: ClientConnection, msg: CoinbaseMessage) -> None:
        if msg.seq is not None:
            if self._expected_seq is not None and msg.seq > self._expected_seq:
                self.counts["sequence_gaps"] += 1
                self.counts["lost_frames"] += msg.seq - self._expected_seq
                await self._resubscribe(ws)
            elif self._expected_seq is not None and msg.seq < self._expected_seq:
                self.counts["stale_frames"] += 1
            self._expected_seq = max(self._expected_seq or 0, msg.seq + 1)
        for bad in msg.bad:
            self.skips.skip(bad.kind, bad.detail)
        channel = msg.channel
        if channel == "heartbeats":
            if self._last_heartbeat is not None and msg.heartbeat is not None \
                    and msg.heartbeat > self._last_heartbeat + 1:
                self.counts["heartbeat_gaps"] += 1
            if msg.heartbeat is not None:
                self._last_heartbeat = max(msg.heartbeat, self._last_heartbeat or 0)
            self.clock.observe(msg.time_ms)
        elif channel == "candles":
            for symbol, candles in msg.snapshots.items():
                if symbol not in self._symbols:
                    self.skips.skip(UNKNOWN_SYMBOL, symbol)
                    continue
                if symbol in self._resync:
                    await self._backfill(symbol, max(c.timestamp for c in candles))
                self._emit(self.book.snapshot(symbol, candles))
            for symbol, candle in msg.updates:
                if symbol not in self._symbols:
                    self.skips.skip(UNKNOWN_SYMBOL, symbol)
                    continue
                if symbol in self._resync:
                    await self._backfill(symbol, candle.timestamp)
                self._emit(self.book.update(symbol, candle))
        elif channel == "subscriptions" and msg.subscriptions is not None:
            self._check_ack(msg.subscriptions)

    def _check_ack(self, subscriptions: dict[str, list[str]]) -> None:
        if not self._pending_acks:
            return
        asked = self._pending_acks.pop(0)
        if asked is None:
            return
        refused = sorted(asked - set(subscriptions.get("candles", [])))
        if refused:
            for sym in refused:
                self._symbols.discard(sym)
                self._resync.discard(sym)
            self.counts["rejected"] += len(refused)
            self.listener.on_rejected(refused, f"{self.config.name} did not accept these product ids")

    async def _resubscribe(self, ws: ClientConnection) -> None:
        """Lost frames: a fresh snapshot plus a REST backfill brings every symbol back in line."""
        symbols = sorted(self._symbols)
        self._resync |= self._symbols
        if symbols:
            self.counts["resubscribes"] += 1
            await self._send_unsubscribe(ws, symbols)
            await self._send_subscribe(ws, symbols)

    async def _backfill(self, symbol: str, live_ts: int) -> None:
        """Closed candles between the last close and the live bucket `live_ts`, from REST."""
        self._resync.discard(symbol)
        start = self.book.gap_start(symbol, live_ts)
        current = self.book.forming.get(symbol)
        if start is None and self.book.last_closed(symbol) is None and current is not None \
                and current.timestamp < live_ts:
            start = current.timestamp
        if start is None or start >= live_ts:
            return
        self.counts["backfill_requests"] += 1
        try:
            candles = await self.rest.candles(symbol, "5m", start, live_ts)
        except AdapterError as exc:
            self.counts["backfill_failures"] += 1
            self.listener.on_state(ConnectionState.ERROR, f"backfill of {symbol} failed: {exc}"[:300])
            return
        self._emit(self.book.backfill(symbol, candles))
