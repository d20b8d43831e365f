"""Skeleton of a new exchange's live stream: one connection, kline-style frames that say "closed".

The shared pieces do the hard parts: ReconnectingSocket (connect, liveness, reconnect, states),
GapFills (REST fills off the receive loop), OpenTimeBound (no bar from the future), ClosedLedger
(each bar closes once, in order). What is left to write is marked NotImplementedError.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ConnectionState, ExchangeConfig, LiveStream, StreamListener, live_stats
from streaming.adapters.clock import ExchangeClock, OpenTimeBound
from streaming.adapters.gapfill import GapFills
from streaming.adapters.ledger import ClosedLedger
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.reconnect import ReconnectingSocket
from streaming.adapters.skips import BAD_TIMESTAMP, BadFrame, SkipCounter
from streaming.adapters.supervise import LoopFailures
from streaming.adapters.symbols import split_valid
from streaming.models import Candle
from streaming.timeframes import timeframe_ms

log = logging.getLogger(__name__)

Key = tuple[str, str]
Held = tuple[Candle, bool]


def parse_frame(raw: bytes) -> tuple[str, str, Candle, bool]:
    """(symbol, timeframe, candle, closed) of one frame, or BadFrame; pure, never anything else.
    Decode with validate.decode_frame and build candles with validate.fast_candle."""
    raise BadFrame("schema", "the template parses nothing")


class TemplateLiveStream(LiveStream):
    def __init__(self, config: ExchangeConfig, rest: Any, symbols: Iterable[str], timeframes: Iterable[str],
                 listener: StreamListener, *, clock_ms: Callable[[], int] | None = None,
                 watchdog_s: float = 30.0, backoff: Backoff | None = None) -> None:
        self.config = config
        self.rest = rest
        self.listener = listener
        self.steps = {tf: timeframe_ms(tf) for tf in timeframes}
        self.counts: Counter[str] = Counter()
        self.skips = SkipCounter(log, f"{config.name} ws")
        self.failures = LoopFailures(f"{config.name} stream", listener, self.counts)
        self.ledger = ClosedLedger(config.name)
        self.owed: dict[Key, int] = {}  # open time of the next close owed per stream
        self.bound = OpenTimeBound(ExchangeClock(clock_ms))
        self.socket = ReconnectingSocket(
            self._url, listener, self.failures, watchdog_s=watchdog_s, backoff=backoff or Backoff(0.5, 30.0),
            connect_bucket=TokenBucket(float(config.api_limits.get("ws_connections_per_second", 1))))
        self.fills: GapFills[Key, Held] = GapFills(self._fetch, self._apply_fill, self._route, listener, self.failures)
        self._symbols: set[str] = set(split_valid(symbols)[0])
        self._closed = asyncio.Event()

    # -- LiveStream API
    @property
    def symbols(self) -> frozenset[str]:
        return frozenset(self._symbols)

    def stats(self) -> dict[str, Any]:
        out = live_stats(self.counts, self.ledger.counts, self.skips, len(self._symbols))
        out["frames"] = self.socket.frames
        return out

    async def run(self) -> None:
        try:
            await self.socket.run(self._on_open, self._on_frame)
        finally:
            await self.fills.close()
            self.listener.on_state(ConnectionState.DISCONNECTED, "closed")

    async def subscribe(self, symbols: Iterable[str]) -> None:
        raise NotImplementedError("validate (split_valid), add, send the exchange's subscribe message")

    async def unsubscribe(self, symbols: Iterable[str]) -> None:
        raise NotImplementedError("remove, send the exchange's unsubscribe message; keep the ledger")

    async def close(self) -> None:
        self._closed.set()
        await self.socket.stop()

    # -- the warm-up handover: frames wait for the history, then the bars in between come over REST
    def hold_for_warm_up(self, symbols: Iterable[str]) -> None:
        for sym in symbols:
            for tf in self.steps:
                self.fills.pause((sym, tf))

    def waiting(self, symbol: str) -> bool:
        return any((symbol, tf) in self.fills.held for tf in self.steps)

    def warmed_up(self, symbol: str, timeframe: str, newest: int | None) -> None:
        key = (symbol, timeframe)
        if timeframe not in self.steps:
            return
        if newest is not None and newest > self.ledger.last_closed.get(key, newest - 1):
            self.ledger.last_closed[key] = newest
            self.owed[key] = newest + self.steps[timeframe]
        self.fills.resume(key)

    # -- connection
    def _url(self) -> str:
        return self.config.ws_url

    async def _on_open(self, ws: ClientConnection) -> None:
        raise NotImplementedError("send the subscribe message(s) for self._symbols")

    # -- frames: synchronous, nothing awaited on the receive loop
    def _on_frame(self, raw: bytes) -> None:
        try:
            symbol, tf, candle, closed = parse_frame(raw)
        except BadFrame as bad:
            self.skips.skip(bad.kind, bad.detail)
            return
        step = self.steps.get(tf)
        if step is None or symbol not in self._symbols:
            self.skips.skip("unknown_symbol", f"{symbol} {tf}")
            return
        if self.bound.ahead(candle.timestamp, step, closed):
            self.skips.skip(BAD_TIMESTAMP, f"{symbol} {tf} bar at {candle.timestamp} ms is ahead of our clock")
            return
        self._route((symbol, tf), (candle, closed))

    def _route(self, key: Key, item: Held) -> None:
        candle, closed = item
        if self.fills.holding(key):
            self.fills.hold(key, item)
            return
        owed = self.owed.get(key)
        if owed is not None and candle.timestamp > owed:  # closes were lost: fill them first
            self.fills.start(key, owed, candle.timestamp, item)
            return
        self.owed.setdefault(key, candle.timestamp)
        if closed:
            update = self.ledger.close(key, candle)
            self.owed[key] = candle.timestamp + self.steps[key[1]]
            if update is not None:
                self.listener.on_candle(update)

    async def _fetch(self, key: Key, start: int, end: int) -> list[Candle]:
        result: list[Candle] = await self.rest.candles(key[0], key[1], start, end)
        return result

    def _apply_fill(self, key: Key, candles: list[Candle] | None, end: int) -> None:
        for update in self.ledger.fill(key, candles or []):
            self.listener.on_candle(update)
        self.owed[key] = max(self.owed.get(key, end), end)
