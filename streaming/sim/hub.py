"""Live WebSocket connections of one simulated exchange, and the faults aimed at them.

Every frame of a connection is built (and numbered) in order into its outbox and sent by one
writer task, so sequence numbers follow the wire order and a stall simply holds the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from aiohttp import web

from streaming.sim.clock import SimClock
from streaming.sim.config import SimConfig
from streaming.sim.faults import malformed_kinds
from streaming.sim.market import Market

log = logging.getLogger(__name__)


class SimConnection:
    def __init__(self, hub: Hub, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.hub = hub
        self.ws = ws
        self.transport = request.transport
        self.outbox: deque[str | bytes] = deque()
        self.wake = asyncio.Event()
        self.stall_until = 0.0
        self.closed = False
        self.frames_sent = 0
        self.opened = time.monotonic()
        # fault budgets consumed by the next ticks
        self.malformed: deque[str] = deque()
        self.duplicates = 0
        self.out_of_order = 0
        self.sequence_gaps = 0

    def lose_next_closes(self, symbols: set[str]) -> None:  # Binance overrides (validate refuses Coinbase)
        raise NotImplementedError

    def push(self, frame: str | bytes) -> None:
        self.outbox.append(frame)
        self.wake.set()

    def abort(self) -> None:
        """Close the TCP connection with no close frame, like a network failure."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        self.wake.set()

    async def flush(self) -> None:
        ws = self.ws
        while self.outbox and not self.closed:
            if time.monotonic() < self.stall_until:
                return
            frame = self.outbox.popleft()
            try:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            except (ConnectionError, RuntimeError, asyncio.CancelledError):
                self.closed = True
                raise ConnectionResetError("client went away") from None
            self.frames_sent += 1

    def tick(self, now_ms: int) -> None:
        """Build the frames due now (updates, heartbeats, pings) into the outbox."""
        raise NotImplementedError

    def next_wakeup(self) -> float:
        """Real seconds until the next tick is due."""
        raise NotImplementedError

    def streams_symbol(self, symbol: str) -> bool:
        """Whether the connection is subscribed to any stream of SYMBOL."""
        raise NotImplementedError

    async def on_ping_due(self) -> None:  # Binance overrides
        return None

    async def writer(self) -> None:
        try:
            while not self.closed:
                now = time.monotonic()
                if now < self.stall_until:
                    await asyncio.sleep(self.stall_until - now)
                    continue
                self.tick(self.hub.clock.now_ms())
                await self.on_ping_due()
                await self.flush()
                self.wake.clear()
                delay = self.next_wakeup()
                if self.outbox and time.monotonic() >= self.stall_until:
                    await asyncio.sleep(0)  # never starve the loop, even with frames queued
                    continue
                try:
                    # at least a millisecond: a tick is never due more often than that
                    await asyncio.wait_for(self.wake.wait(), max(delay, 0.001))
                except TimeoutError:
                    pass
        except ConnectionResetError:
            pass
        finally:
            self.closed = True


class Hub:
    """One exchange's connections; faults reach every connection open at the time."""

    def __init__(self, exchange: str, market: Market, clock: SimClock, config: SimConfig) -> None:
        self.exchange = exchange
        self.market = market
        self.clock = clock
        self.config = config
        self.connections: set[SimConnection] = set()
        self.rest_429_left = 0
        self.rest_retry_after = 1
        self.stalled: dict[str, float] = {}  # SYMBOL -> until (monotonic): no frame of it on any connection
        self.rest_delay = 0.0  # real seconds before every REST answer (the slow_rest fault)
        self.stats: dict[str, int] = {"connections": 0, "bad_client_messages": 0, "rest_requests": 0,
                                      "closes_withheld": 0}
        self._last_warn = 0.0

    def warn(self, msg: str, *args: Any) -> None:
        """Bad client input is counted; the log gets at most one line a second."""
        self.stats["bad_client_messages"] += 1
        now = time.monotonic()
        if now - self._last_warn >= 1.0:
            self._last_warn = now
            log.warning("simulator %s: " + msg, self.exchange, *args)

    async def serve(self, conn: SimConnection, reader: Any) -> None:
        self.connections.add(conn)
        self.stats["connections"] += 1
        writer = asyncio.create_task(conn.writer())
        try:
            await reader()
        finally:
            conn.closed = True
            conn.wake.set()
            self.connections.discard(conn)
            writer.cancel()
            try:
                await writer
            except asyncio.CancelledError:
                pass

    def is_stalled(self, symbol: str) -> bool:
        until = self.stalled.get(symbol)
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        del self.stalled[symbol]
        return False

    def apply(self, kind: str, params: dict[str, Any]) -> int:
        """Aim a WebSocket fault at the open connections; returns how many it reached."""
        conns = [c for c in self.connections if not c.closed]
        if kind == "stall_symbol":  # every connection, also those opened while it lasts
            self.stalled[params["symbol"]] = time.monotonic() + params["seconds"]
            return sum(1 for c in conns if c.streams_symbol(params["symbol"]))
        for c in conns:
            if kind == "drop":
                c.abort()
            elif kind == "stall":
                c.stall_until = time.monotonic() + params["seconds"]
            elif kind == "malformed":
                c.malformed.extend(malformed_kinds(params["kind"], params["count"]))
            elif kind == "duplicate":
                c.duplicates += params["count"]
            elif kind == "out_of_order":
                c.out_of_order += params["count"]
            elif kind == "sequence_gap":
                c.sequence_gaps += params["count"]
            elif kind == "server_shutdown":
                self.shutdown(c, params.get("close", True))
            elif kind == "lose_closes":
                c.lose_next_closes(set(params["symbols"]))
            c.wake.set()
        if kind == "rate_limit":
            self.rest_429_left = params["count"]
            self.rest_retry_after = params["retry_after"]
        if kind == "slow_rest":
            self.rest_delay = params["seconds"]
        return len(conns)

    def shutdown(self, conn: SimConnection, close: bool) -> None:  # Binance overrides
        raise NotImplementedError

    async def close_all(self) -> None:
        for c in list(self.connections):
            c.closed = True
            c.wake.set()
            try:
                await asyncio.wait_for(c.ws.close(code=1001, message=b"simulator stopping"), 1.0)
            except (TimeoutError, ConnectionError, RuntimeError):
                c.abort()
