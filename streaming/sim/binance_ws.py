"""Binance spot kline streams: raw `/ws/<stream>`, combined `/stream?streams=`, live SUBSCRIBE."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from streaming.sim import formats as fm
from streaming.sim.faults import corrupt_binance
from streaming.sim.hub import Hub, SimConnection
from streaming.sim.market import INTERVAL_MS

MAX_STREAMS = 1024
_STREAM_RE = re.compile(r"^([a-z0-9]{1,30})@kline_([0-9]{1,2}[smhdwM])$")
REPLAY_ONLY_INTERVALS = {"1m": 60_000}  # the recording's interval; no synthetic 1m bars


class StreamError(ValueError):
    pass


class BinanceConnection(SimConnection):
    hub: BinanceHub

    def __init__(self, hub: BinanceHub, ws: web.WebSocketResponse, request: web.Request, combined: bool) -> None:
        super().__init__(hub, ws, request)
        self.combined = combined
        self.streams: dict[str, tuple[str, str, int]] = {}  # name -> (SYMBOL, interval, step ms)
        self.sent_bucket: dict[str, int] = {}
        self.last_final: dict[str, dict[str, Any]] = {}
        self.stalled: set[str] = set()  # streams whose frames a stall_symbol fault holds back
        self.next_update = 0.0
        self.next_ping = time.monotonic() + hub.ping_period
        self.pings = 0
        self.pongs = 0
        self.close_at: float | None = None
        self.lose: set[str] = set()  # streams whose next closing frame is withheld (lose_closes)

    def streams_symbol(self, symbol: str) -> bool:
        return any(s[0] == symbol for s in self.streams.values())

    def _emit(self, stream: str, payload: dict[str, Any]) -> None:
        body = {"stream": stream, "data": payload} if self.combined else payload
        self.push(orjson.dumps(body).decode())

    def lose_next_closes(self, symbols: set[str]) -> None:
        self.lose.update(n for n, s in self.streams.items() if s[0] in symbols and s[1] not in REPLAY_ONLY_INTERVALS)

    def add(self, names: list[str]) -> None:
        for name in names:
            self.streams[name] = self.hub.parse_stream(name)
            self.sent_bucket.pop(name, None)

    # ---- the tick -----------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        now = time.monotonic()
        if self.close_at is not None and now >= self.close_at:
            self.close_at = None
            self.closed = True
            asyncio.get_running_loop().create_task(self.ws.close(code=1001, message=b"server shutdown"))
            return
        if not self.streams or now < self.next_update or not self.hub.config.synthetic_live:
            return
        self.next_update = now + self.hub.config.update_interval
        market, ex = self.hub.market, self.hub.exchange
        cap = self.hub.config.max_catch_up_bars
        for name, (symbol, interval, step) in list(self.streams.items()):
            if interval in REPLAY_ONLY_INTERVALS:
                continue
            bucket = now_ms - (now_ms - market.anchor_ms) % step
            if self.hub.is_stalled(symbol):
                self.stalled.add(name)
                continue
            if name in self.stalled:  # the stall is over: the latest state, not what was missed
                self.stalled.discard(name)
                self.sent_bucket[name] = bucket
            last = self.sent_bucket.get(name)
            if last is not None and last < bucket:
                for b in range(max(last, bucket - cap * step), bucket, step):
                    bar = market.closed(ex, symbol, step, b)
                    if bar is not None and name in self.lose:
                        self.lose.discard(name)  # never sent; REST still has the bar
                        self.hub.stats["closes_withheld"] += 1
                    elif bar is not None:
                        payload = fm.bn_kline(symbol, interval, bar, step, True, now_ms)
                        self._emit(name, payload)
                        self.last_final[name] = payload
            bar = market.forming(ex, symbol, step, now_ms)
            if bar is not None:
                self._emit(name, fm.bn_kline(symbol, interval, bar, step, False, now_ms))
            self.sent_bucket[name] = bucket
        self._faults(now_ms)

    def _faults(self, now_ms: int) -> None:
        live = [n for n, s in self.streams.items() if s[1] not in REPLAY_ONLY_INTERVALS]
        if not live:
            return
        # a stream that has closed a bar already: duplicated and out-of-order frames are then
        # final (x: true) frames, the case a client must dedupe (a 1d stream may have none yet)
        name = next((n for n in live if n in self.last_final), live[0])
        symbol, interval, step = self.streams[name]
        market = self.hub.market
        while self.duplicates:
            self.duplicates -= 1
            payload = self.last_final.get(name)
            if payload is None:
                bar = market.forming(self.hub.exchange, symbol, step, now_ms)
                payload = fm.bn_kline(symbol, interval, bar, step, False, now_ms) if bar else None
            if payload is not None:
                self._emit(name, payload)
                self._emit(name, payload)
        while self.out_of_order:
            self.out_of_order -= 1
            old_bucket = now_ms - (now_ms - market.anchor_ms) % step - 2 * step
            bar = market.closed(self.hub.exchange, symbol, step, old_bucket)
            if bar is not None:
                self._emit(name, fm.bn_kline(symbol, interval, bar, step, True, now_ms))
        while self.malformed:
            kind = self.malformed.popleft()
            bar = market.forming(self.hub.exchange, symbol, step, now_ms)
            if bar is None:
                continue
            payload = fm.bn_kline(symbol, interval, bar, step, False, now_ms)
            self.push(corrupt_binance(payload, kind, self.hub.config.oversized_bytes,
                                      name if self.combined else None))

    async def on_ping_due(self) -> None:
        now = time.monotonic()
        if now >= self.next_ping and not self.closed:
            self.next_ping = now + self.hub.ping_period
            self.pings += 1
            try:
                await self.ws.ping(str(self.hub.clock.now_ms()).encode())
            except (ConnectionError, RuntimeError):
                self.closed = True

    def next_wakeup(self) -> float:
        now = time.monotonic()
        due = [self.next_ping]
        if self.streams and self.hub.config.synthetic_live:
            due.append(self.next_update)
        if self.close_at is not None:
            due.append(self.close_at)
        return max(0.0, min(due) - now)

    # ---- client messages ----------------------------------------------------------------------

    def _reply(self, body: dict[str, Any]) -> None:
        self.push(orjson.dumps(body).decode())

    def _error(self, code: int, msg: str, req_id: Any) -> None:
        self.hub.warn("client request refused: %s", msg)
        self._reply({"error": {"code": code, "msg": msg}, "id": req_id})

    def handle(self, text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(3, "Invalid JSON: expected value at line 1 column 1", None)
            return
        if not isinstance(msg, dict):
            self._error(2, "Invalid request: request must be a JSON object", None)
            return
        req_id = msg.get("id")
        if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, int | str)):
            self._error(2, "Invalid request: request ID must be an unsigned integer", None)
            return
        method = msg.get("method")
        params = msg.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            self._reply({"result": list(self.streams), "id": req_id})
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            self._error(2, f"Invalid request: unknown variant {method!r}, expected one of SUBSCRIBE, "
                           "UNSUBSCRIBE, LIST_SUBSCRIPTIONS", req_id)
            return
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            self._error(1, "Invalid value type: expected a list of stream names", req_id)
            return
        if method == "UNSUBSCRIBE":
            for p in params:
                self.streams.pop(p, None)
                self.sent_bucket.pop(p, None)
                self.stalled.discard(p)
            self._reply({"result": None, "id": req_id})
            return
        try:
            for p in params:
                self.hub.parse_stream(p)
        except StreamError as exc:
            self._error(2, f"Invalid request: {exc}", req_id)
            return
        if len(set(self.streams) | set(params)) > MAX_STREAMS:
            self._error(2, f"Invalid request: too many streams; at most {MAX_STREAMS} per connection", req_id)
            return
        self.add([p for p in params if p not in self.streams])
        self._reply({"result": None, "id": req_id})


class BinanceHub(Hub):
    @property
    def ping_period(self) -> float:
        return max(self.config.ping_interval_sim / self.clock.speed, self.config.ping_min_interval)

    def parse_stream(self, name: str) -> tuple[str, str, int]:
        m = _STREAM_RE.match(name)
        if not m:
            raise StreamError(f"invalid stream name {name!r}; expected <symbol>@kline_<interval>, lower case")
        symbol, interval = m.group(1).upper(), m.group(2)
        step = INTERVAL_MS.get(interval) or REPLAY_ONLY_INTERVALS.get(interval)
        if step is None:
            raise StreamError(f"interval {interval!r} not simulated; one of "
                              f"{', '.join([*INTERVAL_MS, *REPLAY_ONLY_INTERVALS])}")
        if not self.market.known(self.exchange, symbol):
            raise StreamError(f"unknown symbol {symbol!r} in stream {name!r}")
        return symbol, interval, step

    def shutdown(self, conn: SimConnection, close: bool) -> None:
        assert isinstance(conn, BinanceConnection)
        conn.push(orjson.dumps({"e": "serverShutdown", "E": self.clock.now_ms()}).decode())
        if close:
            conn.close_at = time.monotonic() + self.config.shutdown_grace

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/ws"):
            combined = False
            names = [n for n in path[len("/ws"):].split("/") if n]
        else:
            combined = True
            raw = request.query.get("streams", "")
            names = [n for n in raw.split("/") if n]
        try:
            if len(names) > MAX_STREAMS:
                raise StreamError(f"too many streams; at most {MAX_STREAMS} per connection")
            parsed = {}
            for n in names:
                try:
                    parsed[n] = self.parse_stream(n)
                except StreamError as exc:
                    if "unknown symbol" not in str(exc):
                        raise
                    # Binance accepts streams of unknown symbols in the URL and just never sends on them
                    self.warn("%s", exc)
        except StreamError as exc:
            return web.json_response({"code": -1100, "msg": f"Illegal characters found in parameter 'streams'; "
                                      f"{exc}"}, status=400)
        ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = BinanceConnection(self, ws, request, combined)
        conn.streams.update(parsed)

        async def reader() -> None:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    conn.handle(msg.data)
                elif msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type == WSMsgType.PONG:
                    conn.pongs += 1
                elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
                else:
                    self.warn("client sent an unexpected %s frame", msg.type.name)

        await self.serve(conn, reader)
        return ws

    def deliver_recorded(self, text: str) -> int:
        """Send one recorded combined-stream frame to the connections on its stream."""
        try:
            frame = orjson.loads(text)
            stream = frame["stream"]
            data = frame["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 0
        n = 0
        for conn in list(self.connections):
            if not conn.closed and isinstance(conn, BinanceConnection) and stream in conn.streams:
                conn.push(text if conn.combined else orjson.dumps(data).decode())
                n += 1
        return n
