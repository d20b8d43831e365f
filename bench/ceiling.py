"""The receive ceiling: a plain `websockets` client process that only receives (no parsing).

It connects like the worker (same streams per connection, combined-stream URL plus SUBSCRIBE,
the worker's connect options), then receives an expected number of frames per connection with
`recv(decode=False)` and reports when the last one arrived (time.monotonic_ns, comparable with
the load server's send times). `handle` optionally runs on each frame (bench_adapters: parse).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench import frames as fr
from streaming.adapters.binance import streams as st

# what the worker's Binance live stream passes to connect() (streaming/adapters/binance/live.py)
WORKER_WS = {"max_size": 2**22, "open_timeout": 10, "close_timeout": 2, "ping_interval": 20, "ping_timeout": 20}


def split(sids: list[int], per_connection: int = 1024) -> list[list[int]]:
    """Streams per connection, packed like the worker packs them."""
    return [sids[i:i + per_connection] for i in range(0, len(sids), per_connection)]


async def open_connection(url: str, sids: list[int]) -> ClientConnection:
    """Connect with as many streams in the URL as fit, SUBSCRIBE the rest and wait for the answers."""
    full, later = st.connect_url(url, sorted(fr.stream_name(s) for s in sids))  # sorted, as the worker does
    ws = await connect(full, **WORKER_WS)
    ids = []
    for i, group in enumerate(st.chunks(later), 1):
        await ws.send(orjson.dumps({"method": "SUBSCRIBE", "params": group, "id": i}).decode())
        ids.append(i)
    while ids:
        answer = orjson.loads(await ws.recv())
        if answer.get("id") in ids:
            ids.remove(answer["id"])
    return ws


async def _receive(ws: ClientConnection, n: int, handle: Callable[[bytes], object] | None) -> int:
    recv = ws.recv
    if handle is None:
        for _ in range(n):
            await recv(decode=False)
    else:
        for _ in range(n):
            handle(await recv(decode=False))
    return time.monotonic_ns()


async def _client(url: str, groups: list[list[int]], pipe: Any, handler: Callable[[], Any] | None) -> None:
    conns = [await open_connection(url, g) for g in groups]
    pipe.send("ready")
    loop = asyncio.get_running_loop()
    while True:
        rounds = await loop.run_in_executor(None, pipe.recv)
        if rounds is None:
            break
        handle = handler() if handler is not None else None
        ends = await asyncio.gather(*(_receive(ws, rounds * len(g), handle) for ws, g in zip(conns, groups,
                                                                                            strict=True)))
        pipe.send(max(ends))
    for ws in conns:
        await ws.close()


def _process(url: str, groups: list[list[int]], pipe: Any, handler: Callable[[], Any] | None) -> None:
    asyncio.run(_client(url, groups, pipe, handler))


class CeilingClient:
    """`with CeilingClient(url, groups) as c:` a client process holding one connection per group;
    `c.start(rounds)` then `c.finished()` -> monotonic ns of its last frame. `handler`, if given,
    is called in the client process before each run and returns the per-frame callable."""

    def __init__(self, url: str, groups: list[list[int]], handler: Callable[[], Any] | None = None) -> None:
        self.url, self.groups, self.handler = url, groups, handler
        self.streams = sum(len(g) for g in groups)
        self.pipe, child = multiprocessing.Pipe()
        self.proc = multiprocessing.Process(target=_process, args=(url, groups, child, handler), daemon=True)

    def __enter__(self) -> CeilingClient:
        self.proc.start()
        if not self.pipe.poll(60) or self.pipe.recv() != "ready":
            self.proc.terminate()
            self.proc.join()
            raise RuntimeError("the ceiling client did not connect")
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.pipe.send(None)
        except OSError:
            pass
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join()

    def start(self, rounds: int) -> None:
        self.pipe.send(rounds)

    def finished(self, timeout: float = 300) -> int:
        if not self.pipe.poll(timeout):
            raise RuntimeError(f"the ceiling client did not receive everything within {timeout:g}s")
        return self.pipe.recv()
