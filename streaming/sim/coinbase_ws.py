"""Coinbase Advanced Trade market-data WebSocket: `candles` and `heartbeats` channels."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from streaming.sim import formats as fm
from streaming.sim.faults import corrupt_coinbase
from streaming.sim.hub import Hub, SimConnection
from streaming.sim.series import FIVE_MIN_MS, Bar

CHANNELS = ("candles", "heartbeats")
SNAPSHOT_SIZE = 100


class CoinbaseConnection(SimConnection):
    hub: CoinbaseHub

    def __init__(self, hub: CoinbaseHub, ws: web.WebSocketResponse, request: web.Request) -> None:
        super().__init__(hub, ws, request)
        self.seq = 0
        self.subscribed = False
        self.candles: dict[str, None] = {}  # product ids in subscription order
        self.heartbeats = False
        self.sent_bucket: dict[str, int] = {}  # product -> bucket of the last update sent
        self.last_final: dict[str, Bar] = {}
        self.stalled: set[str] = set()  # products whose frames a stall_symbol fault holds back
        self.hb_counter = int((hub.clock.now_ms() - hub.clock.start_ms) // 1000) + 1
        self.next_hb = 0.0
        self.next_update = 0.0
        self.close_after_flush = False

    # ---- frames -------------------------------------------------------------------------------

    def frame(self, channel: str, events: list[Any]) -> str:
        seq = self.seq
        self.seq += 1
        if self.sequence_gaps:
            self.seq += self.sequence_gaps
            self.sequence_gaps = 0
        return orjson.dumps(fm.cb_frame(channel, self.hub.clock.now_ns(), seq, events)).decode()

    def frame_dict(self, channel: str, events: list[Any]) -> dict[str, Any]:
        seq = self.seq
        self.seq += 1
        return fm.cb_frame(channel, self.hub.clock.now_ns(), seq, events)

    def _update(self, product: str, bar: Bar) -> None:
        candle = fm.cb_candle(bar, product, self.hub.market.decimals("coinbase", product))
        self.push(self.frame("candles", [{"type": "update", "candles": [candle]}]))

    def ack(self) -> None:
        subs: dict[str, list[str]] = {}
        if self.candles:
            subs["candles"] = list(self.candles)
        if self.heartbeats:
            subs["heartbeats"] = ["heartbeats"]
        self.push(self.frame("subscriptions", [{"subscriptions": subs}]))

    def snapshot(self, product: str, now_ms: int) -> None:
        market = self.hub.market
        bucket = now_ms - now_ms % FIVE_MIN_MS
        span = SNAPSHOT_SIZE * 2
        bars: list[Bar] = []
        while True:
            bars = market.history("coinbase", product, FIVE_MIN_MS, bucket - span * FIVE_MIN_MS,
                                  bucket + FIVE_MIN_MS, now_ms)
            if len(bars) >= SNAPSHOT_SIZE or span > 20_000 or bucket - span * FIVE_MIN_MS < market.anchor_ms:
                break
            span *= 4
        dec = market.decimals("coinbase", product)
        candles = [fm.cb_candle(b, product, dec) for b in bars[-SNAPSHOT_SIZE:]]
        self.push(self.frame("candles", [{"type": "snapshot", "candles": candles}]))
        self.sent_bucket[product] = bucket

    # ---- the tick -----------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        now = time.monotonic()
        if not self.subscribed and now - self.opened > self.hub.config.subscribe_timeout:
            # Coinbase closes connections that subscribe to nothing within 5 s
            self.push(orjson.dumps({"type": "error", "message": "subscription timeout: no subscribe message "
                                    "within 5 seconds"}).decode())
            self.close_after_flush = True
        if self.heartbeats and now >= self.next_hb:
            ns = self.hub.clock.now_ns()
            event = {"current_time": fm.cb_current_time(ns, ns - self.hub.clock.start_ms * 1_000_000 + 7 * 10**9),
                     "heartbeat_counter": self.hb_counter}
            self.hb_counter += 1
            self.push(self.frame("heartbeats", [event]))
            self.next_hb = now + self.hub.heartbeat_period
        if self.candles and now >= self.next_update and self.hub.config.synthetic_live:
            self.next_update = now + self.hub.config.update_interval
            for product in list(self.candles):
                self._product_tick(product, now_ms)
            self._faults(now_ms)

    def streams_symbol(self, symbol: str) -> bool:
        return symbol in self.candles

    def _product_tick(self, product: str, now_ms: int) -> None:
        market = self.hub.market
        bucket = now_ms - now_ms % FIVE_MIN_MS
        if self.hub.is_stalled(product):
            self.stalled.add(product)
            return
        if product in self.stalled:  # the stall is over: the latest state, not what was missed
            self.stalled.discard(product)
            self.sent_bucket[product] = bucket
        last = self.sent_bucket.get(product)
        if last is not None and last < bucket:
            first = max(last, bucket - self.hub.config.max_catch_up_bars * FIVE_MIN_MS)
            for b in range(first, bucket, FIVE_MIN_MS):
                bar = market.closed("coinbase", product, FIVE_MIN_MS, b)
                if bar is not None:  # a quiet bucket sends nothing
                    self._update(product, bar)
                    self.last_final[product] = bar
        bar = market.forming("coinbase", product, FIVE_MIN_MS, now_ms)
        if bar is not None:
            self._update(product, bar)
        self.sent_bucket[product] = bucket

    def _faults(self, now_ms: int) -> None:
        if not self.candles:
            return
        product = next(iter(self.candles))
        market = self.hub.market
        while self.duplicates:
            self.duplicates -= 1
            bar = self.last_final.get(product) or market.forming("coinbase", product, FIVE_MIN_MS, now_ms)
            if bar is not None:
                self._update(product, bar)
                self._update(product, bar)
        while self.out_of_order:
            self.out_of_order -= 1
            old = market.closed("coinbase", product, FIVE_MIN_MS, now_ms - now_ms % FIVE_MIN_MS - 2 * FIVE_MIN_MS)
            if old is not None:
                self._update(product, old)
        while self.malformed:
            kind = self.malformed.popleft()
            bar = market.forming("coinbase", product, FIVE_MIN_MS, now_ms) or self.last_final.get(product)
            if bar is None:
                continue
            candle = fm.cb_candle(bar, product, market.decimals("coinbase", product))
            frame = self.frame_dict("candles", [{"type": "update", "candles": [candle]}])
            self.push(corrupt_coinbase(frame, kind, self.hub.config.oversized_bytes))

    def next_wakeup(self) -> float:
        now = time.monotonic()
        if self.close_after_flush:
            self.closed = True
            asyncio.get_running_loop().create_task(self.ws.close(code=1008, message=b"subscription timeout"))
            return 0.0
        due = [self.opened + self.hub.config.subscribe_timeout + 0.01] if not self.subscribed else []
        if self.heartbeats:
            due.append(self.next_hb)
        if self.candles and self.hub.config.synthetic_live:
            due.append(self.next_update)
        return max(0.0, min(due) - now) if due else 1.0

    # ---- client messages ----------------------------------------------------------------------

    def handle(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.hub.warn("client sent invalid JSON")
            self.push(orjson.dumps({"type": "error", "message": "failure to parse message: invalid JSON"}).decode())
            return
        if not isinstance(msg, dict):
            self.hub.warn("client sent a non-object message")
            self.push(orjson.dumps({"type": "error", "message": "message must be a JSON object"}).decode())
            return
        kind, channel, products = msg.get("type"), msg.get("channel"), msg.get("product_ids", [])
        if kind not in ("subscribe", "unsubscribe"):
            self.hub.warn("client sent type %r", kind)
            self.push(orjson.dumps({"type": "error", "message": f"unknown message type {kind!r}"}).decode())
            return
        if channel not in CHANNELS:
            self.hub.warn("client asked for channel %r", channel)
            self.push(orjson.dumps({"type": "error", "message": f"channel {channel!r} is not served by the "
                                    f"simulator (one of {', '.join(CHANNELS)})"}).decode())
            return
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            self.hub.warn("product_ids is not a list of strings")
            self.push(orjson.dumps({"type": "error", "message": "product_ids must be a list of strings"}).decode())
            return
        self.subscribed = True
        now_ms = self.hub.clock.now_ms()
        if channel == "heartbeats":
            self.heartbeats = kind == "subscribe"
        elif kind == "subscribe":
            for p in products:
                # unknown products are silently left out of the ack, like Coinbase does
                if p not in self.candles and self.hub.market.known("coinbase", p):
                    self.candles[p] = None
                    if self.hub.is_stalled(p):
                        self.stalled.add(p)  # no snapshot while it stalls
                    elif self.hub.config.synthetic_live:
                        self.snapshot(p, now_ms)
        else:
            for p in products:
                self.candles.pop(p, None)
                self.sent_bucket.pop(p, None)
                self.stalled.discard(p)
        self.ack()


class CoinbaseHub(Hub):
    @property
    def heartbeat_period(self) -> float:
        return max(1.0 / self.clock.speed, self.config.heartbeat_min_interval)

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = CoinbaseConnection(self, ws, request)

        async def reader() -> None:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    conn.handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    self.warn("client sent a binary frame")
                elif msg.type == WSMsgType.ERROR:
                    break

        await self.serve(conn, reader)
        return ws

    def deliver_recorded(self, text: str, rewrite_sequence: bool) -> int:
        """Send one recorded frame to every connection subscribed to its channel and products."""
        try:
            frame = orjson.loads(text)
            channel = frame.get("channel")
            products = {c.get("product_id") for e in frame.get("events", []) for key in ("candles", "tickers", "trades")
                        for c in e.get(key, []) if isinstance(c, dict)}
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            return 0
        n = 0
        for conn in list(self.connections):
            if conn.closed or not isinstance(conn, CoinbaseConnection):
                continue
            if channel == "heartbeats":
                wanted = conn.heartbeats
            elif channel == "candles":
                wanted = bool(products & conn.candles.keys())
            else:
                wanted = False
            if wanted:
                if rewrite_sequence:
                    frame["sequence_num"] = conn.seq
                    conn.seq += 1
                    conn.push(orjson.dumps(frame).decode())
                else:
                    conn.push(text)
                n += 1
        return n
