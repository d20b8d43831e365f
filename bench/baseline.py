"""The loopback `websockets` baseline the benchmarks compare against: a server that sends given
frames to each client and a client that times receiving them (optionally handling each one).

`serve` runs the server on the caller's event loop; `serving_in_process` runs the same server in
its own process, so that the sending side does not share the measured process's CPU time.
Connection options (`max_size`, `compression`, ...) are the caller's: each benchmark keeps the
settings its own measured path uses.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving_in_process(frames: list[str], **options: Any) -> Iterator[str]:
    """`serve` in a separate process for the duration of the block; yields its URL."""
    port = _free_port()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve_forever, args=(port, frames, options, ready), daemon=True)
    server.start()
    try:
        ready.wait(30)
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
