"""A websockets client connection that hands whole data frames to a handler as they are read.

websockets parses every frame with a generator-based reader, queues the message and hands it to
`recv()` one await later: about 4 us per frame, as much as everything Livermore does with a
kline. Exchanges send small unfragmented frames, so this connection splits the bytes it reads
into frames itself and calls the handler for each final text or binary frame inside
`data_received`, in order. websockets keeps everything else: the handshake, and any frame that
is not a plain final data frame (pings, pongs, close, fragments, reserved bits, a masked or
oversized frame) is fed to its protocol whole, exactly as it arrived, so keepalive, answering
pings, the closing handshake and every protocol error behave as before. Once websockets owns a
message (a fragment arrived) or the connection is no longer open, every byte goes to websockets
and `recv()` delivers the rest.

Reading never waits for processing: `data_received` only splits the bytes, answers control
frames at once and queues the data frames; the handler runs on them in slices of at most
`SLICE` frames, one event-loop callback each, so between two slices the loop reads again and a
ping that arrived behind a backlog is answered within one slice, not after the whole backlog (a
handler run inside the read callback would stop reading, and the pings would wait in the
kernel's socket buffer behind every frame sent before them). Reading pauses only when
`HIGH_WATER` frames wait, and resumes below `LOW_WATER`: a bound on memory, reached only when
the handler is slower than the exchange for a long time.

Data frames read before a handler is attached (while the open hook still subscribes) wait, in
order, for `attach`; pings and pongs read meanwhile are answered and seen at once. A handler
that raises stops the connection: `failure` holds the exception and the transport is aborted,
so the reader's `recv()` ends and can re-raise it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

_OPEN = State.OPEN
_DATA = (0x81, 0x82)  # FIN + text or binary, no reserved bits
_HEADERS_END = b"\r\n\r\n"
_CONTROL = frozenset({0x88, 0x89, 0x8A})  # FIN + close, ping, pong
SLICE = 256  # data frames handled per event-loop callback
HIGH_WATER = 200_000  # queued data frames that pause reading
LOW_WATER = 50_000  # ... and resume it


class FrameHandlingConnection(ClientConnection):
    on_frame: Callable[[bytes], object] | None = None
    failure: BaseException | None = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._fast = False  # splitting frames here (after a clean handshake, with no extension)
        self._handshake = True  # still reading the HTTP response
        self._seen = b""  # the response read so far (only to find its end)
        self._rest = b""  # the start of a frame not yet complete
        self._queued: deque[bytes] = deque()  # data frames read, not yet handled, in order
        self._scheduled = False  # a slice is due on the event loop
        self._paused = False  # reading paused at HIGH_WATER

    def attach(self, on_frame: Callable[[bytes], object]) -> None:
        """Handle every later data frame with `on_frame`, starting with those already read (an
        exception of `on_frame` on those propagates to the caller)."""
        queued = self._queued
        while queued:
            on_frame(queued.popleft())
        self.on_frame = on_frame

    def connection_lost(self, exc: Exception | None) -> None:
        self._drain()  # what was read before the end is handled before the reader hears of it
        super().connection_lost(exc)

    def _schedule(self) -> None:
        if not self._scheduled and self.on_frame is not None:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._slice)

    def _slice(self) -> None:
        self._scheduled = False
        handle = self.on_frame
        queued = self._queued
        if handle is None or self.failure is not None:
            return
        try:
            for _ in range(min(SLICE, len(queued))):
                handle(queued.popleft())
        except Exception as exc:
            self._fail(exc)
            return
        if self._paused and len(queued) <= LOW_WATER:
            self._paused = False
            self.transport.resume_reading()
        if queued:
            self._schedule()

    def _drain(self) -> None:
        """Handle every queued frame now (before websockets takes over, so the order holds)."""
        handle = self.on_frame
        if handle is None or self.failure is not None:
            return
        queued = self._queued
        try:
            while queued:
                handle(queued.popleft())
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.failure = exc
        self._fast = False
        self._rest = b""
        self._queued.clear()
        self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self._fast:
            self._split(self._rest + data if self._rest else data)
        elif self._handshake:
            self._response(data)
        else:
            super().data_received(data)

    def _response(self, data: bytes) -> None:
        # websockets reads the response and nothing after it: the frames after it start here
        seen = self._seen + data
        end = seen.find(_HEADERS_END)
        if end < 0:
            self._seen = seen[-3:]
            super().data_received(data)
            return
        cut = len(data) - (len(seen) - end - 4)
        self._handshake = False
        self._seen = b""
        super().data_received(data[:cut])
        protocol = self.protocol
        self._fast = protocol.state is _OPEN and not protocol.extensions and protocol.handshake_exc is None
        if cut < len(data):
            self.data_received(data[cut:])

    def _split(self, buf: bytes) -> None:
        queue = self._queued.append
        size = len(buf)
        pos = 0
        max_size = self.protocol.max_message_size or size
        try:
            while size - pos >= 2:
                head = buf[pos]
                length = buf[pos + 1]
                start = pos + 2
                if length == 126:
                    if size - pos < 4:
                        break
                    length = int.from_bytes(buf[start:start + 2])
                    start += 2
                elif length == 127:
                    if size - pos < 10:
                        break
                    length = int.from_bytes(buf[start:start + 8])
                    start += 8
                elif length > 127:  # masked: a server never masks, websockets refuses it
                    self._hand_over(buf[pos:])
                    return
                if length > max_size:
                    self._hand_over(buf[pos:])
                    return
                end = start + length
                if end > size:
                    break
                if head in _DATA:
                    queue(buf[start:end])
                elif head in _CONTROL:
                    super().data_received(buf[pos:end])  # whole, as it arrived
                    if self.protocol.state is not _OPEN:
                        self._hand_over(buf[end:])
                        return
                else:  # a fragment, reserved bits or an unknown opcode: websockets' from here on
                    self._hand_over(buf[pos:])
                    return
                pos = end
        except Exception as exc:
            self._fail(exc)
            return
        self._rest = buf[pos:] if pos < size else b""
        if self._queued:
            self._schedule()
            if not self._paused and len(self._queued) >= HIGH_WATER:
                self._paused = True
                self.transport.pause_reading()

    def _hand_over(self, data: bytes) -> None:
        self._fast = False
        self._rest = b""
        self._drain()
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        if data and self.failure is None:
            super().data_received(data)
