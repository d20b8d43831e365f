"""Binance market-data stream: kline streams over as many combined-stream connections as needed.

Imperative shell around the pure KlineBook; each connection is a ReconnectingSocket. A
connection holds at most `ws_streams_per_connection` streams; new connections respect
`ws_connections_per_5m`; sends on a connection respect `ws_incoming_messages_per_second`. Symbols
come and go by live SUBSCRIBE/UNSUBSCRIBE. A connection that nears its 24 h lifetime or gets
`serverShutdown` is replaced by a new one opened BEFORE the old one closes; the shared book
dedupes the overlap. Lost closes (reconnects, dropped frames) are filled over REST in the
background (GapFills) while only that stream's live klines wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import WebSocketException

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import (
    AdapterError,
    ConnectionState,
    ExchangeConfig,
    LiveStream,
    StreamListener,
    live_stats,
    report_stream_health,
)
from streaming.adapters.binance import streams as st
from streaming.adapters.binance.kline_book import KlineBook
from streaming.adapters.binance.parse import ACK, ERROR, KLINE, SHUTDOWN, BinanceMessage, parse_frame
from streaming.adapters.binance.rest import BinanceRest
from streaming.adapters.clock import ExchangeClock, OpenTimeBound
from streaming.adapters.gapfill import GapFills
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.reconnect import ReconnectingSocket
from streaming.adapters.skips import BAD_TIMESTAMP, EXCHANGE_ERROR, UNKNOWN_SYMBOL, BadFrame, SkipCounter
from streaming.adapters.staleness import StaleTracker, report
from streaming.adapters.supervise import LoopFailures, supervised
from streaming.adapters.symbols import split_valid
from streaming.models import Candle
from streaming.timeframes import timeframe_ms

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (SYMBOL, timeframe)
Held = tuple[Candle, bool]  # a kline and whether it closed
FRAME_INTERVAL_S = 2.0  # a kline stream pushes every 2 s
STALE_CHECK_S = 1.0


class _Conn:
    _ids = itertools.count(1)

    def __init__(self, streams: set[str], send_rate: float) -> None:
        self.id = next(self._ids)
        self.streams = streams
        self.in_url: set[str] = set()  # the streams the current connection's URL carried
        self.socket: ReconnectingSocket
        self.task: asyncio.Task[None] | None = None
        self.retired = False
        self.replacing = False
        self.sender = TokenBucket(send_rate, burst=send_rate)

    @property
    def ws(self) -> ClientConnection | None:
        return self.socket.ws


class BinanceLiveStream(LiveStream):
    def __init__(self, config: ExchangeConfig, rest: BinanceRest, symbols: Iterable[str],
                 timeframes: Iterable[str], listener: StreamListener, *, watchdog_s: float = 60.0,
                 backoff: Backoff | None = None, lifetime_s: float | None = None,
                 check_exchange_info: bool = True, clock_ms: Callable[[], int] | None = None,
                 gapfill_concurrency: int = 8, stale_after_s: float = 60.0,
                 stale_clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self.rest = rest
        self.listener = listener
        self.timeframes = tuple(dict.fromkeys(timeframes))
        self._steps = {tf: timeframe_ms(tf) for tf in self.timeframes}  # fails fast on an unknown one
        limits = config.api_limits
        self.per_connection = int(limits.get("ws_streams_per_connection", 1024))
        per_5m = float(limits.get("ws_connections_per_5m", 300))
        self._connect_bucket = TokenBucket(per_5m / 300.0, burst=max(1.0, per_5m / 10))
        # pings, pongs and subscribes count: keep one message a second spare for pongs
        self._send_rate = max(1.0, float(limits.get("ws_incoming_messages_per_second", 5)) - 1)
        hours = float(limits.get("ws_connection_lifetime_hours", 24))
        self.lifetime_s = lifetime_s if lifetime_s is not None else max(60.0, hours * 3600 - 600)
        self.watchdog_s = watchdog_s
        self._backoff_proto = backoff or Backoff(0.5, 30.0)
        self.check_exchange_info = check_exchange_info
        self.book = KlineBook(config.name)
        self.skips = SkipCounter(log, f"{config.name} ws")
        self.counts: Counter[str] = Counter()
        self.failures = LoopFailures(f"{config.name} stream", listener, self.counts)
        self.bound = OpenTimeBound(ExchangeClock(clock_ms))
        self.fills: GapFills[Key, Held] = GapFills(self._fetch, self._apply_fill, self._replay, listener,
                                                   self.failures, gapfill_concurrency)
        self._initial = list(symbols)
        self._symbols: set[str] = set()
        # (symbol, timeframe) -> the same tuple, made at subscription: a frame's key is replaced by
        # it, so every per-stream dict downstream holds one tuple and one copy of the names per stream.
        # A stream's name is kept only in its connection's set: st.stream_key reads the key back.
        self._keys: dict[Key, Key] = {}
        self._conns: list[_Conn] = []
        self._retired_frames = 0
        self._pending: dict[int, tuple[str, list[str]]] = {}  # request id -> (method, streams)
        self._ids = itertools.count(1)
        self._handovers: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._known: set[str] | None = None
        self.staleness = (StaleTracker(stale_after_s, FRAME_INTERVAL_S) if stale_clock is None
                          else StaleTracker(stale_after_s, FRAME_INTERVAL_S, stale_clock))

    # -- LiveStream API
    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    def stats(self) -> dict[str, Any]:
        out = live_stats(self.counts, self.book.counts, self.skips, len(self._symbols))
        out["frames"] = self._retired_frames + sum(c.socket.frames for c in self._conns)
        out["connections"] = sum(1 for c in self._conns if not c.retired)
        out["streams"] = len(self._keys)
        out["gaps_unconfirmed"] = len(self.fills.unconfirmed)
        out.update({f"streams_{k}": v for k, v in self.staleness.counts.items()})
        return out

    def stale_streams(self) -> list[tuple[str, str]]:
        return self.staleness.stale()

    async def run(self) -> None:
        watch = asyncio.create_task(supervised("stale stream check", self._watch_stale, self.failures,
                                                self._backoff_proto.fresh(), self._closed))
        try:
            await self.subscribe(self._initial)
            await self._closed.wait()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            for conn in list(self._conns):
                await self._stop(conn)
            for task in list(self._handovers):
                task.cancel()
            await asyncio.gather(*self._handovers, return_exceptions=True)
            await self.fills.close()
            self.listener.on_state(ConnectionState.DISCONNECTED, "closed")

    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = await self._accept(symbols)
        if not new:
            return
        streams = []
        for sym in new:
            for tf in self.timeframes:
                key = (sym, tf)
                self._keys.setdefault(key, key)
                streams.append(st.stream_name(sym, tf))
        self.staleness.watch(self._keys[sym, tf] for sym in new for tf in self.timeframes)
        active = [c for c in self._conns if not c.retired and not c.replacing]
        additions, fresh = st.pack(streams, [self.per_connection - len(c.streams) for c in active],
                                   self.per_connection)
        for conn, add in zip(active, additions, strict=True):
            if add:
                conn.streams.update(add)
                await self._request(conn, "SUBSCRIBE", add)
        for group in fresh:
            self._start(_Conn(set(group), self._send_rate))

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = {s.upper() for s in symbols} & self._symbols
        if not gone:
            return
        self._symbols -= gone
        names = self._forget_streams(gone)
        # the book keeps their last closes: a re-subscribe fills the gap instead of re-closing
        for conn in self._conns:
            mine = sorted(names & conn.streams)
            if mine:
                conn.streams.difference_update(mine)
                await self._request(conn, "UNSUBSCRIBE", mine)

    def _forget_streams(self, symbols: set[str]) -> set[str]:
        """Stop tracking every stream of `symbols` (they left); returns the streams' names."""
        keys = [(sym, tf) for sym in symbols for tf in self.timeframes]
        self.staleness.forget(keys)
        for key in keys:
            self._keys.pop(key, None)
        self.fills.drop(lambda key: key[0] not in symbols)
        return {st.stream_name(sym, tf) for sym, tf in keys}

    async def close(self) -> None:
        self._closed.set()

    def hold_for_warm_up(self, symbols: Iterable[str]) -> None:
        for sym in symbols:
            for tf in self.timeframes:
                self.fills.pause((sym.upper(), tf))

    def waiting(self, symbol: str) -> bool:
        held = self.fills.held
        sym = symbol.upper()
        return any((sym, tf) in held for tf in self.timeframes)

    def warmed_up(self, symbol: str, timeframe: str, newest: int | None) -> None:
        key = (symbol.upper(), timeframe)
        key = self._keys.get(key, key)
        step = self._steps.get(timeframe)
        if step is None:
            return
        if newest is not None:
            self.book.seed(key, step, newest)
        self.fills.resume(key)

    # -- symbols
    async def _accept(self, symbols: Iterable[str]) -> list[str]:
        good, bad, reason = split_valid(symbols)
        if bad:
            self._reject(bad, reason)
        good = [s if s.isupper() else s.upper() for s in good]  # upper case already: no copy of the name
        new = [s for s in dict.fromkeys(good) if s not in self._symbols]
        if new and self.check_exchange_info:
            # Binance accepts a SUBSCRIBE for any name and then sends nothing: check the listing
            known = await self._listing(refresh=self._known is not None and not set(new) <= self._known)
            if known is not None:
                unknown = [s for s in new if s not in known]
                if unknown:
                    self._reject(unknown, f"not a trading symbol on {self.config.name}")
                new = [s for s in new if s in known]
        self._symbols.update(new)
        return new

    async def _listing(self, refresh: bool) -> set[str] | None:
        if self._known is None or refresh:
            try:
                info = await self.rest.exchange_info()
            except AdapterError as exc:
                log.warning("%s: exchangeInfo unavailable, symbols not checked: %s", self.config.name, exc)
                return self._known
            self._known = {s for s, i in info.items() if i.status == "TRADING"}
        return self._known

    def _reject(self, symbols: list[str], reason: str) -> None:
        self.counts["rejected"] += len(symbols)
        self.listener.on_rejected(symbols, reason)

    # -- connections
    def _start(self, conn: _Conn) -> None:
        def url() -> str:
            address, later = st.connect_url(self.config.ws_url, sorted(conn.streams))
            conn.in_url = conn.streams - set(later)
            return address

        async def on_open(ws: ClientConnection) -> None:
            self.staleness.touch(map(st.stream_key, conn.streams))
            # streams that did not fit in the URL, or were added while connecting
            later = sorted(conn.streams - conn.in_url)
            conn.in_url = set()  # needed only until here: not a second set of all its names meanwhile
            await self._request(conn, "SUBSCRIBE", later)

        def on_frame(raw: bytes) -> None:
            self._on_frame(conn, raw)

        def on_expiring() -> None:
            self.counts["lifetime_rotations"] += 1
            self._replace(conn, "connection lifetime")

        conn.socket = ReconnectingSocket(
            url, self.listener, self.failures, connect_bucket=self._connect_bucket,
            backoff=self._backoff_proto.fresh(), watchdog_s=self.watchdog_s, lifetime_s=self.lifetime_s,
            detail=lambda: f"connection {conn.id} ({len(conn.streams)} streams)")
        self._conns.append(conn)
        body = lambda: conn.socket.run(on_open, on_frame, on_expiring=on_expiring)  # noqa: E731
        conn.task = asyncio.create_task(supervised(f"connection {conn.id}", body, self.failures,
                                                   self._backoff_proto.fresh(), self._closed),
                                        name=f"{self.config.name}-ws-{conn.id}")

    async def _stop(self, conn: _Conn) -> None:
        conn.retired = True
        await conn.socket.stop()
        if conn.task is not None and conn.task is not asyncio.current_task():
            conn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.task
        if conn in self._conns:
            self._conns.remove(conn)
            self._retired_frames += conn.socket.frames

    def _replace(self, old: _Conn, why: str) -> None:
        """Open the successor first; the old connection keeps streaming until the new one is live."""
        if old.replacing or old.retired:
            return
        old.replacing = True
        # the same set object: later (un)subscribes apply to the successor
        new = _Conn(old.streams, self._send_rate)
        self._start(new)

        async def handover() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(new.socket.live.wait(), 30)
            log.info("%s: connection %d replaced by %d (%s)", self.config.name, old.id, new.id, why)
            await self._stop(old)

        task = asyncio.create_task(handover())
        self._handovers.add(task)
        task.add_done_callback(self._handovers.discard)

    async def _request(self, conn: _Conn, method: str, streams: list[str]) -> None:
        ws = conn.ws
        if ws is None or not streams:
            return  # not connected: the streams go into the next connect URL
        for group in st.chunks(streams):
            rid = next(self._ids)
            self._pending[rid] = (method, group)
            await conn.sender.acquire()
            with contextlib.suppress(WebSocketException):
                await ws.send(orjson.dumps({"method": method, "params": group, "id": rid}).decode())

    # -- frames
    def _on_frame(self, conn: _Conn, raw: bytes) -> None:
        try:
            msg = parse_frame(raw)
        except BadFrame as bad:
            self.skips.skip(bad.kind, bad.detail)
            return
        kind = msg.kind
        if kind == KLINE:
            self._on_kline(msg)
        elif kind == SHUTDOWN:
            self.counts["server_shutdowns"] += 1
            self._replace(conn, "serverShutdown")
        elif kind in (ACK, ERROR):
            self._on_response(msg)

    def _on_response(self, msg: BinanceMessage) -> None:
        entry = self._pending.pop(msg.id, None) if isinstance(msg.id, int) else None
        if msg.kind != ERROR:
            return
        self.counts["subscribe_errors"] += 1
        if entry is not None and entry[0] == "SUBSCRIBE":
            symbols = sorted({k[0] for k in map(st.stream_key, entry[1]) if k in self._keys})
            if symbols:
                self._reject(symbols, f"{self.config.name} refused the subscription: {msg.error}")
                self._symbols.difference_update(symbols)
                # out of every connection's set too: no reconnect asks for them again
                names = self._forget_streams(set(symbols))
                for conn in self._conns:
                    conn.streams.difference_update(names)
                return
        # counted and logged at most once per interval: an exchange (or impostor) may repeat it
        self.skips.skip(EXCHANGE_ERROR, f"request {str(msg.id)[:20]} failed: {msg.error}")

    def _on_kline(self, msg: BinanceMessage) -> None:
        symbol = msg.symbol
        tf = msg.interval
        step = self._steps.get(tf)
        candle = msg.candle
        if step is None or symbol not in self._symbols or candle is None:
            self.skips.skip(UNKNOWN_SYMBOL, f"{symbol[:20]} {tf[:10]}")
            return
        if self.bound.ahead(candle.timestamp, step, msg.closed):
            self.skips.skip(BAD_TIMESTAMP, f"{symbol} {tf} bar at {candle.timestamp} ms is ahead of our clock")
            return
        key = (symbol, tf)
        key = self._keys.get(key, key)
        self.staleness.frame(key)
        self._route(key, (candle, msg.closed))

    def _route(self, key: Key, item: Held) -> None:
        """One kline: held behind its stream's gap fill, the start of a fill, or into the book."""
        held = self.fills.held.get(key)
        candle, closed = item
        if held is not None:
            last = held[-1] if held else None
            if not closed and last is not None and not last[1] and last[0].timestamp == candle.timestamp:
                held[-1] = item  # a newer forming update of the same bar supersedes the held one
            else:
                held.append(item)
            return
        start = self.book.gap_start(key, candle.timestamp)
        if start is not None:
            self.fills.start(key, start, candle.timestamp, item)
            return
        update = self.book.on_kline(key, self._steps[key[1]], candle, closed)
        if update is not None:
            self.listener.on_candle(update)

    async def _watch_stale(self) -> None:
        """Streams quiet on a live connection: reported and resubscribed on their connection.
        While a connection is down (or has sent nothing yet) its streams' silence does not count."""
        tracker = self.staleness
        while True:
            await asyncio.sleep(STALE_CHECK_S)
            for conn in self._conns:
                if not conn.retired and not conn.socket.live.is_set():
                    tracker.touch(map(st.stream_key, conn.streams))
            changes = tracker.check()
            if not changes:
                continue
            report(changes, tracker, lambda sym, tf, stale, detail: report_stream_health(
                self.listener, sym, tf, stale, detail))
            again = {st.stream_name(sym, tf) for sym, tf in changes.resubscribe}
            for conn in [c for c in self._conns if not c.retired and not c.replacing]:
                mine = sorted(again & conn.streams)
                if mine:
                    self.counts["resubscribes"] += 1
                    await self._request(conn, "UNSUBSCRIBE", mine)
                    await self._request(conn, "SUBSCRIBE", mine)

    def _replay(self, key: Key, item: Held) -> None:
        if key[0] in self._symbols:
            self._route(key, item)

    async def _fetch(self, key: Key, start: int, end: int) -> list[Candle]:
        return await self.rest.candles(key[0], key[1], start, end)

    def _apply_fill(self, key: Key, candles: list[Candle] | None, end: int) -> None:
        if candles is not None:
            for update in self.book.fill(key, self._steps[key[1]], candles):
                self.listener.on_candle(update)
        # what REST answered without is not there: the gap is filled once
        self.book.skip_to(key, end)
