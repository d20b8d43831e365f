"""Plain WebSocket/HTTP clients for the conformance tests (not the adapters)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import websockets


async def recv_json(ws: Any, timeout: float = 10.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws: Any, pred: Callable[[Any], bool], limit: int = 5000, timeout: float = 20.0) -> list[Any]:
    """Frames up to and including the first that satisfies `pred`."""
    out = []

    async def loop() -> None:
        for _ in range(limit):
            raw = await ws.recv()
            try:
                frame = json.loads(raw)
            except ValueError:
                frame = {"_raw": raw}
            out.append(frame)
            if pred(frame):
                return
        raise AssertionError(f"condition not met in {limit} frames")

    await asyncio.wait_for(loop(), timeout)
    return out


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, object]:
    """(status, headers, JSON body) of a GET; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read() or b"null")


def connect(url: str, **kw: Any):
    return websockets.connect(url, max_size=8 * 1024 * 1024, open_timeout=10, **kw)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
