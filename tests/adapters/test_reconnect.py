"""The shared ReconnectingSocket against small WebSocket servers on 127.0.0.1: liveness without a
timeout per frame, keepalive through a backlog, connected only once frames arrive, failures
reported and retried."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

from websockets.asyncio.server import ServerConnection, serve

from streaming.adapters.backoff import Backoff
from streaming.adapters.base import ConnectionState
from streaming.adapters.ratelimit import TokenBucket
from streaming.adapters.reconnect import ReconnectingSocket
from streaming.adapters.supervise import LoopFailures
from tests.adapters.live_helpers import Recorder, wait_until


@contextlib.asynccontextmanager
async def server(handler, **options):
    async with serve(handler, "127.0.0.1", 0, **options) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def make_socket(url: str, rec: Recorder, **options) -> ReconnectingSocket:
    failures = LoopFailures("test", rec, Counter())
    options.setdefault("watchdog_s", 5.0)
    return ReconnectingSocket(lambda: url, rec, failures, connect_bucket=TokenBucket(100.0),
                              backoff=Backoff(0.05, 0.05), **options)


async def nothing(ws) -> None:
    return None


async def chatty(ws: ServerConnection) -> None:
    """A server that sends a frame every 20 ms until the connection ends."""
    with contextlib.suppress(Exception):
        while True:
            await ws.send("tick")
            await asyncio.sleep(0.02)


async def test_a_backlog_being_processed_never_starves_the_keepalive():
    # the whole backlog (2.4 s of handler CPU) outlasts the ping timeout several times over, while
    # one read's worth of frames (a few hundred x 0.2 ms) stays far below it even on a loaded machine
    frames = 12_000
    sent = asyncio.Event()

    async def burst(ws: ServerConnection) -> None:
        payload = '{"k":"' + "x" * 150 + '"}'
        for _ in range(frames):
            await ws.send(payload)
        sent.set()
        await ws.wait_closed()

    # both sides ping every 0.2 s and give up after 1.5 s without the pong
    async with server(burst, ping_interval=0.2, ping_timeout=1.5) as url:
        rec = Recorder()
        sock = make_socket(url, rec, ping_interval=0.2, ping_timeout=1.5)
        handled = 0

        def slow(raw: bytes) -> None:  # 0.2 ms of CPU per frame: 2.4 s for the backlog
            nonlocal handled
            handled += 1
            until = time.perf_counter() + 0.0002
            while time.perf_counter() < until:
                pass

        task = asyncio.create_task(sock.run(nothing, slow))
        try:
            await wait_until(lambda: handled >= frames, 60, "the backlog to be processed")
            await wait_until(lambda: sent.is_set(), 5, "the server to finish")
            await asyncio.sleep(0.5)  # a few more keepalive rounds, idle
            assert sock.counts["connections_opened"] == 1 and sock.counts.get("reconnects", 0) == 0
            assert sock.frames == frames and sock.connected
        finally:
            await sock.stop()
            await asyncio.wait_for(task, 10)


async def test_connected_means_frames_arrive_and_silence_reconnects():
    connections = 0
    release = asyncio.Event()

    async def quiet_then_one(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await release.wait()  # open, answering pings, but no frame yet
            await ws.send("first")
        await ws.wait_closed()  # then silence: the watchdog must notice

    async with server(quiet_then_one) as url:
        rec = Recorder()
        sock = make_socket(url, rec, watchdog_s=0.6)
        got: list[bytes] = []
        task = asyncio.create_task(sock.run(nothing, got.append))
        try:
            await wait_until(lambda: sock.connected, 5, "the handshake")
            await asyncio.sleep(0.3)  # less than the watchdog: still open
            assert rec.count(ConnectionState.CONNECTED) == 0  # a handshake is not "connected"
            sock.backoff.attempt = 5
            release.set()
            await wait_until(lambda: rec.count(ConnectionState.CONNECTED) == 1, 5, "connected on the first frame")
            assert got == [b"first"] and sock.backoff.attempt == 0  # the first frame resets the backoff
            await wait_until(lambda: sock.counts["watchdog_timeouts"] >= 1 and connections >= 2, 10,
                             "the watchdog to reconnect a silent connection")
            assert any(s == ConnectionState.DISCONNECTED and "no message for 0.6s" in (d or "")
                       for s, d in rec.states)
        finally:
            await sock.stop()
            await asyncio.wait_for(task, 10)


async def test_a_failing_open_hook_is_reported_and_retried():
    async with server(chatty) as url:
        rec = Recorder()
        sock = make_socket(url, rec)
        calls = 0

        async def on_open(ws) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise KeyError("subscribe table")

        task = asyncio.create_task(sock.run(on_open, lambda raw: None))
        try:
            await wait_until(lambda: rec.count(ConnectionState.CONNECTED) >= 1, 10, "connected after a retry")
            errors = [d for s, d in rec.states if s == ConnectionState.ERROR]
            assert len(errors) == 1 and "KeyError" in errors[0] and "reconnecting in" in errors[0]
            assert sock.counts["loop_errors"] == 1 and sock.counts["reconnects"] == 1 and calls == 2
        finally:
            await sock.stop()
            await asyncio.wait_for(task, 10)


async def test_a_failing_frame_handler_is_reported_with_its_cause_and_the_connection_reopened():
    async with server(chatty) as url:
        rec = Recorder()
        sock = make_socket(url, rec)
        calls = 0

        def handler(raw: bytes) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:  # handled inside the connection's read callback
                raise KeyError("book")

        task = asyncio.create_task(sock.run(nothing, handler))
        try:
            await wait_until(lambda: sock.counts.get("reconnects", 0) >= 1 and calls > 5, 10,
                             "a reconnect and frames on the new connection")
            errors = [d for s, d in rec.states if s == ConnectionState.ERROR]
            assert len(errors) == 1 and "KeyError" in errors[0] and "reconnecting in" in errors[0]
            assert sock.counts["loop_errors"] == 1 and sock.counts["connections_opened"] == 2
        finally:
            await sock.stop()
            await asyncio.wait_for(task, 10)
