"""A plain WebSocket client beside the worker: it stamps the arrival of every closing kline
(`"x":true`) on some of the same simulator streams, on a connection of its own, so a close
event's lag from the bar's end can be set beside what the exchange's delivery alone takes.

It runs in a process of its own and does nothing else: frames are only checked for the closed
marker, and a closing frame is parsed once. Times are time.monotonic_ns() (CLOCK_MONOTONIC, the
same in every process).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from bench.piped import PipedProcess

Key = tuple[str, str, int]  # (SYMBOL, interval, open ms)


def closing_key(raw: bytes) -> Key | None:
    """(symbol, interval, open time) of a combined-stream closing kline frame, else None."""
    if b'"x":true' not in raw:
        return None
    try:
        k = orjson.loads(raw)["data"]["k"]
        return str(k["s"]), str(k["i"]), int(k["t"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _run(url: str, pipe: Any) -> None:
    from websockets.sync.client import connect

    seen: dict[Key, int] = {}
    with connect(url, max_size=None, compression=None, open_timeout=10) as ws:
        pipe.send("ready")
        while True:
            try:
                raw = ws.recv(timeout=0.2, decode=False)
            except TimeoutError:
                raw = None
            now = time.monotonic_ns()
            if raw is not None:
                key = closing_key(raw)
                if key is not None and key not in seen:
                    seen[key] = now
            if pipe.poll():
                cmd = pipe.recv()
                if cmd == "take":
                    pipe.send(seen)
                elif cmd == "stop":
                    return


class CloseWatch(PipedProcess):
    """`with CloseWatch(ws_url, streams) as w:` ... w.take() -> {(symbol, interval, open): arrival ns}."""

    def __init__(self, ws_url: str, streams: list[str]) -> None:
        super().__init__(_run, f"{ws_url}/stream?streams={'/'.join(streams)}")

    def __enter__(self) -> CloseWatch:
        self.start(20, "the close watcher did not connect")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take(self) -> dict[Key, int]:
        self.pipe.send("take")
        if not self.pipe.poll(10):
            raise RuntimeError("the close watcher does not answer")
        return self.pipe.recv()
