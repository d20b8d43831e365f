"""Binance market-data stream: kline streams over as many combined-stream connections as needed.

Imperative shell around the pure KlineBook. Each connection holds at most
`ws_streams_per_connection` streams; new connections respect `ws_connections_per_5m`; sends on a
connection respect `ws_incoming_messages_per_second`. Symbols come and go by live
SUBSCRIBE/UNSUBSCRIBE. A connection that nears its 24 h lifetime or gets `serverShutdown` is
replaced by a new one opened BEFORE the old one closes; the shared book dedupes the overlap.
Lost closes (reconnects, dropped frames) are backfilled over REST before the live close resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Iterable
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
from streaming.adapters.binance import streams as st
from streaming.adapters.binance.kline_book import KlineBook
from streaming.adapters.binance.parse import ACK, ERROR, KLINE, SHUTDOWN, BinanceMessage, parse_frame
from streaming.adapters.binance.rest import BinanceRest
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.skips import UNKNOWN_SYMBOL, BadFrame, SkipCounter
from streaming.adapters.symbols import split_valid
from streaming.timeframes import timeframe_ms

log = logging.getLogger(__name__)


class _Reconnect(Exception):
    pass


class _Conn:
    _ids = itertools.count(1)

    def __init__(self, streams: Iterable[str], send_rate: float) -> None:
        self.id = next(self._ids)
        self.streams: set[str] = set(streams)
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.opened_at = 0.0
        self.live = asyncio.Event()  # set on the first frame after connecting
        self.retired = False
        self.replacing = False
        self.sender = TokenBucket(send_rate, burst=send_rate)


class BinanceLiveStream(LiveStream):
    def __init__(self, config: ExchangeConfig, rest: BinanceRest, symbols: Iterable[str],
                 timeframes: Iterable[str], listener: StreamListener, *, watchdog_s: float = 60.0,
                 backoff: Backoff | None = None, lifetime_s: float | None = None,
                 check_exchange_info: bool = True) -> None:
        self.config = config
        self.rest = rest
        self.listener = listener
        self.timeframes = tuple(dict.fromkeys(timeframes))
        for tf in self.timeframes:
            timeframe_ms(tf)  # fail fast on an unknown timeframe
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
        self._initial = list(symbols)
        self._symbols: set[str] = set()
        self._by_stream: dict[str, tuple[str, str]] = {}  # stream -> (SYMBOL, timeframe)
        self._conns: list[_Conn] = []
        self._pending: dict[int, tuple[str, list[str]]] = {}  # request id -> (method, streams)
        self._ids = itertools.count(1)
        self._backfilling: dict[tuple[str, str], asyncio.Event] = {}
        self._closed = asyncio.Event()
        self._running = False
        self._known: set[str] | None = None

    # -- LiveStream API
    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    def stats(self) -> dict[str, Any]:
        out = live_stats(self.counts, self.book.counts, self.skips, len(self._symbols))
        out["connections"] = sum(1 for c in self._conns if not c.retired)
        out["streams"] = len(self._by_stream)
        return out

    async def run(self) -> None:
        self._running = True
        try:
            await self.subscribe(self._initial)
            await self._closed.wait()
        finally:
            self._running = False
            for conn in list(self._conns):
                await self._stop(conn)
            self.listener.on_state(ConnectionState.DISCONNECTED, "closed")

    async def subscribe(self, symbols: Iterable[str]) -> None:
        new = await self._accept(symbols)
        if not new:
            return
        streams = []
        for sym in new:
            for tf in self.timeframes:
                name = st.stream_name(sym, tf)
                self._by_stream[name] = (sym, tf)
                streams.append(name)
        active = [c for c in self._conns if not c.retired and not c.replacing]
        additions, fresh = st.pack(streams, [self.per_connection - len(c.streams) for c in active],
                                   self.per_connection)
        for conn, add in zip(active, additions, strict=True):
            if add:
                conn.streams.update(add)
                if conn.ws is not None:
                    await self._request(conn, "SUBSCRIBE", add)
        for group in fresh:
            self._start(_Conn(group, self._send_rate))

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        gone = {s.upper() for s in symbols} & self._symbols
        if not gone:
            return
        self._symbols -= gone
        names = [n for n, (sym, _) in self._by_stream.items() if sym in gone]
        for n in names:
            del self._by_stream[n]
        # the book keeps their last closes: a re-subscribe backfills the gap instead of re-closing
        for conn in self._conns:
            mine = [n for n in names if n in conn.streams]
            if mine:
                conn.streams.difference_update(mine)
                if conn.ws is not None:
                    await self._request(conn, "UNSUBSCRIBE", mine)

    async def close(self) -> None:
        self._closed.set()

    # -- symbols
    async def _accept(self, symbols: Iterable[str]) -> list[str]:
        good, bad, reason = split_valid(symbols)
        if bad:
            self._reject(bad, reason)
        good = [s.upper() for s in good]
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
        self._conns.append(conn)
        conn.task = asyncio.create_task(self._conn_loop(conn), name=f"{self.config.name}-ws-{conn.id}")

    async def _stop(self, conn: _Conn) -> None:
        conn.retired = True
        if conn.ws is not None:
            with contextlib.suppress(Exception):
                await conn.ws.close()
        if conn.task is not None and conn.task is not asyncio.current_task():
            conn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await conn.task
        if conn in self._conns:
            self._conns.remove(conn)

    async def _conn_loop(self, conn: _Conn) -> None:
        backoff = self._backoff_proto.fresh()
        while not conn.retired and not self._closed.is_set():
            await self._connect_bucket.acquire()
            url, later = st.connect_url(self.config.ws_url, sorted(conn.streams))
            detail = f"connection {conn.id} ({len(conn.streams)} streams)"
            self.listener.on_state(ConnectionState.CONNECTING, detail)
            reason = "closed"
            try:
                async with connect(url, max_size=2**22, open_timeout=10, close_timeout=2,
                                   ping_interval=20, ping_timeout=20) as ws:
                    conn.ws = ws
                    conn.opened_at = time.monotonic()
                    self.counts["connections_opened"] += 1
                    self.listener.on_state(ConnectionState.CONNECTED, detail)
                    for group in st.chunks(later):
                        await self._request(conn, "SUBSCRIBE", group)
                    await self._receive(conn, ws, backoff)
            except (OSError, TimeoutError, WebSocketException, _Reconnect) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
            finally:
                conn.ws = None
                conn.live.clear()
            if conn.retired or self._closed.is_set():
                break
            self.counts["reconnects"] += 1
            delay = backoff.next_delay()
            self.listener.on_state(ConnectionState.DISCONNECTED, f"{detail}: {reason}; reconnecting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)

    async def _receive(self, conn: _Conn, ws: ClientConnection, backoff: Backoff) -> None:
        while not conn.retired:
            try:
                raw = await asyncio.wait_for(ws.recv(decode=False), self.watchdog_s)
            except TimeoutError:
                self.counts["watchdog_timeouts"] += 1
                raise _Reconnect(f"no message for {self.watchdog_s:.0f}s") from None
            self.counts["frames"] += 1
            if not conn.live.is_set():
                conn.live.set()
                backoff.reset()
            try:
                msg = parse_frame(raw)
            except BadFrame as bad:
                self.skips.skip(bad.kind, bad.detail)
                continue
            if msg.kind == KLINE:
                await self._on_kline(msg)
            elif msg.kind == SHUTDOWN:
                self.counts["server_shutdowns"] += 1
                self._replace(conn, "serverShutdown")
            elif msg.kind in (ACK, ERROR):
                self._on_response(msg)
            if not conn.replacing and time.monotonic() - conn.opened_at > self.lifetime_s:
                self.counts["lifetime_rotations"] += 1
                self._replace(conn, "connection lifetime")

    def _replace(self, old: _Conn, why: str) -> None:
        """Open the successor first; the old connection keeps streaming until the new one is live."""
        if old.replacing or old.retired:
            return
        old.replacing = True
        new = _Conn(old.streams, self._send_rate)
        new.streams = old.streams  # same set object: later (un)subscribes apply to the successor
        self._start(new)

        async def handover() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(new.live.wait(), 30)
            log.info("%s: connection %d replaced by %d (%s)", self.config.name, old.id, new.id, why)
            await self._stop(old)

        task = asyncio.create_task(handover())
        task.add_done_callback(lambda _t: None)
        new.handover = task  # type: ignore[attr-defined]  # keep a reference until done

    async def _request(self, conn: _Conn, method: str, streams: list[str]) -> None:
        if conn.ws is None:
            return
        for group in st.chunks(streams):
            rid = next(self._ids)
            self._pending[rid] = (method, group)
            await conn.sender.acquire()
            with contextlib.suppress(WebSocketException):
                await conn.ws.send(orjson.dumps({"method": method, "params": group, "id": rid}).decode())

    def _on_response(self, msg: BinanceMessage) -> None:
        entry = self._pending.pop(msg.id, None) if isinstance(msg.id, int) else None
        if msg.kind == ERROR:
            self.counts["subscribe_errors"] += 1
            if entry is not None and entry[0] == "SUBSCRIBE":
                symbols = sorted({self._by_stream[n][0] for n in entry[1] if n in self._by_stream})
                if symbols:
                    self._reject(symbols, f"{self.config.name} refused the subscription: {msg.error}")
                    self._symbols.difference_update(symbols)
            else:
                log.warning("%s: request %s failed: %s", self.config.name, msg.id, msg.error)

    # -- candles
    async def _on_kline(self, msg: BinanceMessage) -> None:
        tf = msg.interval
        symbol = msg.symbol
        if symbol not in self._symbols or tf not in self.timeframes:
            self.skips.skip(UNKNOWN_SYMBOL, f"{symbol} {tf}")
            return
        key = (symbol, tf)
        busy = self._backfilling.get(key)
        if busy is not None:
            await busy.wait()
        assert msg.candle is not None
        step = timeframe_ms(tf)
        start = self.book.gap_start(symbol, tf, msg.candle.timestamp)
        if start is not None:
            await self._backfill(symbol, tf, step, start, msg.candle.timestamp)
        update = self.book.on_kline(symbol, tf, step, msg.candle, msg.closed)
        if update is not None:
            self.listener.on_candle(update)

    async def _backfill(self, symbol: str, tf: str, step: int, start: int, end: int) -> None:
        key = (symbol, tf)
        done = asyncio.Event()
        self._backfilling[key] = done
        self.counts["backfill_requests"] += 1
        try:
            candles = await self.rest.candles(symbol, tf, start, end)
            for update in self.book.backfill(symbol, tf, step, candles):
                self.listener.on_candle(update)
        except AdapterError as exc:
            self.counts["backfill_failures"] += 1
            self.book.skip_to(symbol, tf, end)
            self.listener.on_state(ConnectionState.ERROR, f"backfill of {symbol} {tf} failed: {exc}"[:300])
        finally:
            del self._backfilling[key]
            done.set()
