"""FrameHandlingConnection against a raw WebSocket server on 127.0.0.1: data frames reach the
handler whole and in order however the bytes are cut, pings in between are answered, and what
it does not split itself (fragments, close) goes on through websockets."""

from __future__ import annotations

import asyncio
import contextlib
import re

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.utils import accept_key

from streaming.adapters.wsframes import SLICE, FrameHandlingConnection
from tests.adapters.live_helpers import wait_until


def frame(head: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([head, n]) + payload
    if n < 65536:
        return bytes([head, 126]) + n.to_bytes(2) + payload
    return bytes([head, 127]) + n.to_bytes(8) + payload


def client_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, unmasked payload) of every frame a client sent."""
    out, pos = [], 0
    while pos < len(data):
        head, n = data[pos], data[pos + 1] & 0x7F
        pos += 2
        if n == 126:
            n, pos = int.from_bytes(data[pos:pos + 2]), pos + 2
        elif n == 127:
            n, pos = int.from_bytes(data[pos:pos + 8]), pos + 8
        mask, pos = data[pos:pos + 4], pos + 4
        out.append((head & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data[pos:pos + n]))))
        pos += n
    return out


@contextlib.asynccontextmanager
async def raw_server(after_handshake: bytes = b""):
    """Answers the handshake (with `after_handshake` in the same write) and records what it reads."""
    received = bytearray()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = re.search(rb"sec-websocket-key: *(\S+)", request, re.I)
        assert key is not None
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept_key(key.group(1).decode()).encode() + b"\r\n\r\n"
                     + after_handshake)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                received.extend(data)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}", received
    finally:
        server.close()
        await server.wait_closed()


def connection(url: str):
    return connect(url, create_connection=FrameHandlingConnection, ping_interval=None, compression=None,
                   close_timeout=0.1)  # the raw server never answers a close


PAYLOADS = [b'{"a":1}', b"\x00\x01binary", b"x" * 200, b"y" * 70_000, b"", b'{"last":true}']
HEADS = [0x81, 0x82, 0x81, 0x81, 0x81, 0x81]


async def test_data_frames_cut_anywhere_reach_the_handler_whole_and_pings_are_answered():
    wire = b"".join(frame(h, p) for h, p in zip(HEADS[:3], PAYLOADS[:3], strict=True))
    wire += frame(0x89, b"ping-1") + b"".join(frame(h, p) for h, p in zip(HEADS[3:], PAYLOADS[3:], strict=True))
    wire += frame(0x89, b"ping-2")
    for cut in (1, 2, 3, 5, 127, 4096, len(wire)):
        async with raw_server() as (url, received), connection(url) as ws:
            assert isinstance(ws, FrameHandlingConnection)
            got: list[bytes] = []
            ws.attach(got.append)
            for i in range(0, len(wire), cut):
                ws.data_received(wire[i:i + cut])
            await wait_until(lambda got=got: len(got) >= len(PAYLOADS), 5, "the data frames handled")
            assert got == PAYLOADS, f"cut every {cut} bytes"
            await wait_until(lambda: len(client_frames(bytes(received))) >= 2, 5, "the pongs")
            assert client_frames(bytes(received)) == [(0xA, b"ping-1"), (0xA, b"ping-2")]


async def test_frames_sent_with_the_handshake_wait_for_the_handler_and_pings_do_not():
    early = frame(0x81, b"one") + frame(0x89, b"early ping") + frame(0x81, b"two")
    async with raw_server(early) as (url, received), connection(url) as ws:
        await wait_until(lambda: bool(client_frames(bytes(received))), 5, "the pong before any handler")
        assert client_frames(bytes(received)) == [(0xA, b"early ping")]
        got: list[bytes] = []
        ws.attach(got.append)
        assert got == [b"one", b"two"]
        ws.data_received(frame(0x81, b"three"))
        await wait_until(lambda: len(got) >= 3, 5, "the frame after attach handled")
        assert got == [b"one", b"two", b"three"]


async def test_a_ping_behind_a_backlog_is_answered_before_the_backlog_is_handled():
    """Reading never waits for the handler: the pong goes out while the frames read before the ping
    still wait their turn, and they are all handled afterwards, in order."""
    n = 5 * SLICE
    wire = b"".join(frame(0x81, str(i).encode()) for i in range(n)) + frame(0x89, b"behind")
    async with raw_server() as (url, received), connection(url) as ws:
        got: list[bytes] = []
        ws.attach(got.append)
        ws.data_received(wire)
        assert got == []  # nothing handled inside the read callback
        await wait_until(lambda: bool(client_frames(bytes(received))), 5, "the pong")
        assert client_frames(bytes(received)) == [(0xA, b"behind")]
        await wait_until(lambda: len(got) >= n, 5, "the backlog handled")
        assert got == [str(i).encode() for i in range(n)]


async def test_a_fragmented_message_and_everything_after_it_go_through_websockets():
    wire = frame(0x81, b"direct") + frame(0x01, b"fr") + frame(0x80, b"agment") + frame(0x81, b"after")
    async with raw_server() as (url, _), connection(url) as ws:
        got: list[bytes] = []
        ws.attach(got.append)
        ws.data_received(wire)
        assert got == [b"direct"]
        assert await ws.recv(decode=False) == b"fragment"
        assert await ws.recv(decode=False) == b"after"


async def test_a_close_frame_closes_and_a_failing_handler_aborts():
    async with raw_server() as (url, received), connection(url) as ws:
        ws.attach(lambda raw: None)
        got: list[bytes] = []
        ws.attach(got.append)
        ws.data_received(frame(0x81, b"x") + frame(0x88, (1000).to_bytes(2) + b"bye") + frame(0x81, b"ignored"))
        assert got == [b"x"] and ws.protocol.state is State.CLOSING
        await wait_until(lambda: bool(client_frames(bytes(received))), 5, "the close frame echoed")
        assert client_frames(bytes(received)) == [(0x8, (1000).to_bytes(2) + b"bye")]
        ws.transport.abort()
    async with raw_server() as (url, _), connection(url) as ws:
        def broken(raw: bytes) -> None:
            raise KeyError("bug")

        ws.attach(broken)
        ws.data_received(frame(0x81, b"x"))
        await wait_until(lambda: ws.failure is not None, 5, "the handler's failure")
        assert isinstance(ws.failure, KeyError)
        with contextlib.suppress(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
