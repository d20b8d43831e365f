"""A Binance-protocol load server that is not the bottleneck: pre-encoded frames written in big
chunks straight to the transport, one or several processes on one port (SO_REUSEPORT).

It speaks what a `livermore worker` (and cryptofeed, and a plain `websockets` client) needs:
- WebSocket combined streams `/stream?streams=a/b/...` plus live SUBSCRIBE / UNSUBSCRIBE /
  LIST_SUBSCRIPTIONS answered `{"result": ..., "id": N}`; pings answered (websockets' Sans-I/O
  ServerProtocol does the handshake, the client frames and the pongs; no compression);
- REST `GET /api/v3/exchangeInfo` (symbols S00000USDT...), `GET /api/v3/klines` (always []).

It sends only when told: `LoadServer.run(Plan)` sends rounds of a frames.py pattern to every open
connection, paced (a total frames/s shared by the connections in proportion to their streams,
so they stay in lockstep) or as fast as each connection reads (the transport's flow control),
and returns when every frame is written: the first and last send times and the send time of
every closing frame (time.monotonic_ns: CLOCK_MONOTONIC, comparable across processes).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from bench import frames as fr

HIGH_WATER = 1 << 20     # a connection that has this much unsent is paused (flow control)
OVERRUN = 8 << 20        # paced: this much unsent means the client fell behind; stop pacing


@dataclass(frozen=True)
class Plan:
    pattern: str                 # frames.MIXED or frames.CLOSES
    start_round: int
    rounds: int
    rate: float | None = None    # total frames/s over all connections; None: as fast as each reads
    total_streams: int = 0       # the streams of every process's connections (for the pacing share)
    per_close: int = 150
    bar_offset: int = 0
    chunk: int = 512             # frames per write (a storm: the whole round in one write)


@dataclass
class Sent:
    """What a plan sent: times are time.monotonic_ns()."""

    first_ns: int = 0
    last_ns: int = 0
    frames: int = 0
    connections: int = 0
    overrun: bool = False        # paced, but a client fell OVERRUN behind: sent at its read speed
    sid: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    bar: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    t_ns: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))

    @property
    def closes(self) -> int:
        return len(self.sid)

    def merge(self, other: Sent) -> Sent:
        firsts = [s.first_ns for s in (self, other) if s.frames]
        return Sent(min(firsts) if firsts else 0, max(self.last_ns, other.last_ns), self.frames + other.frames,
                    self.connections + other.connections, self.overrun or other.overrun,
                    np.concatenate([self.sid, other.sid]), np.concatenate([self.bar, other.bar]),
                    np.concatenate([self.t_ns, other.t_ns]))

    def send_times(self) -> dict[tuple[int, int], int]:
        return dict(zip(zip(self.sid.tolist(), self.bar.tolist(), strict=True), self.t_ns.tolist(), strict=True))


def exchange_info(n_symbols: int) -> bytes:
    return orjson.dumps({"timezone": "UTC", "symbols": [
        {"symbol": fr.symbol(k), "status": "TRADING", "baseAsset": fr.symbol(k)[:-4], "quoteAsset": "USDT",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.00000100"}]} for k in range(n_symbols)]})


def _http(status: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "X-MBX-USED-WEIGHT-1M: 1\r\nConnection: close\r\n\r\n").encode() + body


class Connection(asyncio.Protocol):
    """One client connection: handshake, REST, client frames; its hub decides what to send."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.proto = ServerProtocol(max_size=1 << 20)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, None] = {}  # sids in subscription order
        self.open = False
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=HIGH_WATER, low=HIGH_WATER // 4)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.hub.closed(self)
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        self.proto.receive_data(data)
        for event in self.proto.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._on_text(event.data)
        self._flush()

    def _flush(self) -> None:
        assert self.transport is not None
        for data in self.proto.data_to_send():
            if data:
                self.transport.write(data)
            else:
                self.transport.close()

    def _on_request(self, request: Request) -> None:
        assert self.transport is not None
        url = urlsplit(request.path)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if url.path == "/api/v3/exchangeInfo":
                self.transport.write(_http("200 OK", self.hub.info))
            elif url.path == "/api/v3/klines":
                self.transport.write(_http("200 OK", b"[]"))
            else:
                self.transport.write(_http("404 Not Found", b'{"code":-1,"msg":"not served by the load server"}'))
            self.transport.close()
            return
        self.proto.send_response(self.proto.accept(request))
        self._flush()
        self.open = True
        names = parse_qs(url.query).get("streams", [""])[0]
        self._add([n for n in names.split("/") if n])
        self.hub.opened(self)

    def _add(self, names: list[str]) -> None:
        for name in names:
            sid = fr.parse_stream(name)
            if sid is not None:
                self.streams[sid] = None

    def _on_text(self, text: bytes) -> None:
        try:
            msg = orjson.loads(text)
            method, params, rid = msg.get("method"), msg.get("params", []), msg.get("id")
        except (orjson.JSONDecodeError, AttributeError):
            self.proto.send_text(b'{"error":{"code":3,"msg":"Invalid JSON"},"id":null}')
            return
        result: Any = None
        if method == "SUBSCRIBE":
            self._add(params)
        elif method == "UNSUBSCRIBE":
            for name in params:
                self.streams.pop(fr.parse_stream(name), None)  # type: ignore[arg-type]
        elif method == "LIST_SUBSCRIPTIONS":
            result = [fr.stream_name(s) for s in self.streams]
        self.proto.send_text(orjson.dumps({"result": result, "id": rid}))


class _Hub:
    """One process's connections and its part of each plan."""

    def __init__(self, n_symbols: int) -> None:
        self.info = exchange_info(n_symbols)
        self.conns: set[Connection] = set()
        self.blocks: dict[tuple[Any, ...], fr.Block] = {}
        self.prepared: list[tuple[Connection, fr.Block]] = []
        self.plan: Plan | None = None
        self.accepted = 0  # WebSocket connections ever opened: a reconnect adds one

    def opened(self, conn: Connection) -> None:
        self.conns.add(conn)
        self.accepted += 1

    def closed(self, conn: Connection) -> None:
        self.conns.discard(conn)

    def connections(self) -> list[int]:
        return sorted((len(c.streams) for c in self.conns if c.open), reverse=True)

    def prepare(self, plan: Plan) -> int:
        self.plan, self.prepared = plan, []
        for conn in sorted(self.conns, key=lambda c: min(c.streams, default=0)):
            if conn.open and conn.streams:
                key = (plan.pattern, tuple(conn.streams), plan.per_close, plan.bar_offset)
                if key not in self.blocks:
                    self.blocks[key] = fr.build_block(list(conn.streams), plan.pattern, plan.per_close,
                                                      plan.bar_offset)
                self.prepared.append((conn, self.blocks[key]))
        return sum(b.n_streams for _, b in self.prepared) * plan.rounds

    async def go(self) -> Sent:
        plan = self.plan
        assert plan is not None
        parts = await asyncio.gather(*(self._send(c, b, plan) for c, b in self.prepared))
        out = Sent()
        for part in parts:
            out = out.merge(part)
        return out

    async def _send(self, conn: Connection, block: fr.Block, plan: Plan) -> Sent:
        n = block.n_streams
        first, end = plan.start_round * n, (plan.start_round + plan.rounds) * n
        rate = plan.rate * n / plan.total_streams if plan.rate else None  # this connection's frames/s
        sid, bar, t_ns = [], [], []
        out = Sent(connections=1)
        done = first
        start = time.monotonic_ns()
        while done < end and conn.open:
            if rate is None:
                due = end
            else:
                due = min(end, first + int((time.monotonic_ns() - start) * rate / 1e9) + 1)
                if due <= done:
                    await asyncio.sleep(max(0.0005, (done - first) / rate - (time.monotonic_ns() - start) / 1e9))
                    continue
            while done < due and conn.open:
                block_no, a = divmod(done, block.frames)
                b = min(a + plan.chunk, block.frames, a + due - done)
                data = block.wire(a, b, block_no)
                now = time.monotonic_ns()
                assert conn.transport is not None
                conn.transport.write(data)
                out.first_ns = out.first_ns or now
                out.last_ns = now
                s, k = block.closes_in(a, b, block_no)
                if len(s):
                    sid.append(s)
                    bar.append(k)
                    t_ns.append(np.full(len(s), now, np.int64))
                done += b - a
                if rate is not None and conn.transport.get_write_buffer_size() > OVERRUN:
                    out.overrun, rate, due = True, None, end  # the rest at the client's read speed
                if rate is None:
                    await conn.writable.wait()
                    await asyncio.sleep(0)  # let the other connections write too
            if rate is not None:
                # paced and behind (a write took longer than a frame's share of the rate): still
                # let the other connections write, or they wait until this one is done
                await asyncio.sleep(0)
        out.frames = done - first
        if sid:
            out.sid, out.bar, out.t_ns = np.concatenate(sid), np.concatenate(bar), np.concatenate(t_ns)
        return out


async def _serve(port: int, n_symbols: int, pipe: Any) -> None:
    loop = asyncio.get_running_loop()
    hub = _Hub(n_symbols)
    server = await loop.create_server(lambda: Connection(hub), "127.0.0.1", port, reuse_port=True, backlog=1024)
    pipe.send("ready")
    try:
        while True:
            cmd, arg = await loop.run_in_executor(None, pipe.recv)
            if cmd == "stop":
                break
            try:
                if cmd == "connections":
                    reply: Any = hub.connections()
                elif cmd == "accepted":
                    reply = hub.accepted
                elif cmd == "prepare":
                    reply = hub.prepare(arg)
                elif cmd == "go":
                    reply = await hub.go()
                else:
                    reply = RuntimeError(f"unknown command {cmd!r}")
            except Exception as exc:  # reported to the parent, which raises it
                reply = exc
            pipe.send(reply)
    finally:
        server.close()
        for conn in list(hub.conns):
            if conn.transport is not None:
                conn.transport.abort()


def _process(port: int, n_symbols: int, pipe: Any) -> None:
    asyncio.run(_serve(port, n_symbols, pipe))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoadServer:
    """`with LoadServer(n_symbols, procs) as server:` the server processes live for the block."""

    def __init__(self, n_symbols: int, procs: int = 1) -> None:
        self.n_symbols = n_symbols
        self.procs = procs
        self.port = free_port()
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.rest_url = f"http://127.0.0.1:{self.port}"
        self._children: list[tuple[multiprocessing.Process, Any]] = []

    def __enter__(self) -> LoadServer:
        for _ in range(self.procs):
            parent, child = multiprocessing.Pipe()
            proc = multiprocessing.Process(target=_process, args=(self.port, self.n_symbols, child), daemon=True)
            proc.start()
            self._children.append((proc, parent))
        for proc, pipe in self._children:
            if not pipe.poll(30) or pipe.recv() != "ready":
                raise RuntimeError(f"load server process {proc.pid} did not start")
        return self

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc, _ in self._children if proc.pid is not None]

    def __exit__(self, *exc: object) -> None:
        for proc, pipe in self._children:
            try:
                pipe.send(("stop", None))
            except OSError:
                pass
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        self._children.clear()

    def _ask(self, cmd: str, arg: Any = None, timeout: float = 600) -> list[Any]:
        for _, pipe in self._children:
            pipe.send((cmd, arg))
        replies = []
        for proc, pipe in self._children:
            if not pipe.poll(timeout):
                raise RuntimeError(f"load server process {proc.pid} did not answer {cmd!r} in {timeout:g}s")
            reply = pipe.recv()
            if isinstance(reply, Exception):
                raise reply
            replies.append(reply)
        return replies

    def connections(self) -> list[int]:
        """Stream counts of the open WebSocket connections, largest first."""
        return sorted((n for part in self._ask("connections") for n in part), reverse=True)

    def accepted(self) -> int:
        """WebSocket connections opened since the server started (reconnects included)."""
        return sum(self._ask("accepted"))

    def wait_streams(self, n: int, timeout: float = 60, alive: Any = None) -> list[int]:
        """Wait until the open connections hold n streams; `alive()` may raise to stop waiting."""
        deadline = time.monotonic() + timeout
        while True:
            conns = self.connections()
            if sum(conns) == n:
                return conns
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the clients subscribed {sum(conns)} streams, not {n}, within {timeout:g}s")
            time.sleep(0.1)

    def run(self, plan: Plan, at_go: Callable[[], object] | None = None) -> Sent:
        """Send `plan` to every open connection; returns when every frame is written. `at_go` is
        called once the frames are prepared, just before the first is sent."""
        if not plan.total_streams:
            plan = Plan(**{**plan.__dict__, "total_streams": sum(self.connections())})
        expected = sum(self._ask("prepare", plan))
        if at_go is not None:
            at_go()
        out = Sent()
        for part in self._ask("go"):
            out = out.merge(part)
        if out.frames != expected:  # the figures would be of a client that reconnected: say so
            raise RuntimeError(f"a client closed a connection during the run: {out.frames:,} of {expected:,} "
                               "frames sent")
        return out
