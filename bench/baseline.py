"""The loopback `websockets` baseline the benchmarks compare against: a server that sends given
frames to each client and a client that times receiving them (optionally handling each one).

`serve` runs a `websockets` server on the caller's event loop (sending frame by frame with
`ws.send`: it can be slower than the client, so the figures it gives are server-bound);
`serving_in_process` runs that server in its own process. `fast_serving_in_process` is the
receive ceiling's server: the frames pre-encoded once as WebSocket wire bytes, written to each
client in big chunks as fast as it reads (bench.loadserver's connection handling), in its own
process, so that the client, not the server, is the limit.
Connection options (`max_size`, `compression`, ...) are the caller's: each benchmark keeps the
settings its own measured path uses (the fast server never compresses).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve

from bench.frames import ws_header
from bench.loadserver import Connection, free_port

CHUNK = 256 * 1024


async def serve(frames: list[str], pace: float | None = None, port: int = 0,
                **options: Any) -> tuple[Server, str]:
    """Start a 127.0.0.1 server sending `frames` to each client, then closing; paced: spread over
    ~`pace` seconds in 100 chunks. Returns the server and its URL."""
    async def handler(ws: ServerConnection) -> None:
        if pace is None:
            for f in frames:
                await ws.send(f)
        else:
            chunk = max(1, len(frames) // 100)
            for i in range(0, len(frames), chunk):
                for f in frames[i:i + chunk]:
                    await ws.send(f)
                await asyncio.sleep(pace / 100)
        await ws.close()

    server = await ws_serve(handler, "127.0.0.1", port, **options)
    port = next(iter(server.sockets)).getsockname()[1]
    return server, f"ws://127.0.0.1:{port}"


def _serve_forever(port: int, frames: list[str], options: dict[str, Any], ready) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        server, _ = await serve(frames, port=port, **options)
        async with server:
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


@contextmanager
def serving_in_process(frames: list[str], **options: Any) -> Iterator[str]:
    """`serve` in a separate process for the duration of the block; yields its URL."""
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve_forever, args=(port, frames, options, ready), daemon=True)
    server.start()
    try:
        ready.wait(30)
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.join()


class _Blast:
    """What a bench.loadserver Connection sends: the whole pre-encoded buffer, at the client's pace."""

    info = b'{"symbols":[]}'

    def __init__(self, wire: bytes) -> None:
        self.wire = wire
        self.tasks: set[asyncio.Task[None]] = set()

    def opened(self, conn: Connection) -> None:
        task = asyncio.get_running_loop().create_task(self._write(conn))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def closed(self, conn: Connection) -> None:
        pass

    async def _write(self, conn: Connection) -> None:
        view = memoryview(self.wire)  # immutable: the transport may keep slices of it
        for i in range(0, len(view), CHUNK):
            if not conn.open or conn.transport is None:
                return
            conn.transport.write(view[i:i + CHUNK])
            await conn.writable.wait()


def _blast_forever(port: int, wire: bytes, ready) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        hub = _Blast(wire)
        server = await asyncio.get_running_loop().create_server(lambda: Connection(hub), "127.0.0.1", port)
        async with server:
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


@contextmanager
def fast_serving_in_process(frames: list[str]) -> Iterator[str]:
    """A server process writing `frames` (pre-encoded) to each client as fast as it reads; yields its URL."""
    payloads = [f.encode() for f in frames]
    wire = b"".join(ws_header(len(p)) + p for p in payloads)
    port = free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_blast_forever, args=(port, wire, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the fast baseline server did not start")
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.join()


async def receive(url: str, n: int, handle: Callable[[Any], object] | None = None,
                  decode: bool | None = None, **options: Any) -> float:
    """Seconds from connecting to the `n`th frame received, each passed to `handle`. `decode` as
    in `recv`: None gives text frames as str (what `async for` yields), False bytes.

    The clock starts before the handshake, not after it: the server starts sending as soon as it
    has answered, and (on the same event loop especially) much of the transfer can be done
    before `connect` returns to us."""
    t = time.perf_counter()
    async with connect(url, **options) as ws:
        for _ in range(n):
            raw = await ws.recv(decode=decode)
            if handle is not None:
                handle(raw)
        return time.perf_counter() - t


async def raw_rate(frames: list[str], **options: Any) -> float:
    """Frames/s of receiving `frames` without handling them, the server on this event loop
    (`options` for both ends)."""
    server, url = await serve(frames, **options)
    try:
        return len(frames) / await receive(url, len(frames), **options)
    finally:
        server.close()
        await server.wait_closed()
