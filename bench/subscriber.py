"""Where closes are counted: a Redis PSUBSCRIBE in a process of its own that only stamps arrivals.

The process reads the raw RESP bytes and records (time.monotonic_ns(), chunk) per read, so a
burst of thousands of events is not slowed (nor its times skewed) by parsing; messages are
counted on the fly with one bytes.count per chunk and parsed only when taken. A message's
arrival time is that of the read that completed it.
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from bench.piped import PipedProcess

MARK = b"$8\r\npmessage\r\n"


def _command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def parse(chunks: list[tuple[int, bytes]]) -> list[tuple[int, bytes, bytes]]:
    """(arrival ns, channel, payload) of every complete pmessage in the recorded chunks."""
    return parse_complete(chunks)[0]


def parse_complete(chunks: list[tuple[int, bytes]]) -> tuple[list[tuple[int, bytes, bytes]], int]:
    """The pmessages as parse() gives them, and how many bytes the complete replies take: the rest
    is a reply cut by the read, completed by the next one."""
    data = b"".join(c for _, c in chunks)
    ends, total = [], 0
    for t, c in chunks:
        total += len(c)
        ends.append((total, t))
    out: list[tuple[int, bytes, bytes]] = []
    i, k, done = 0, 0, 0
    while i < len(data):
        if data[i:i + 1] != b"*":
            raise ValueError(f"unexpected RESP at byte {i}: {data[i:i + 20]!r}")
        eol = data.find(b"\r\n", i)
        if eol < 0:
            break
        n, i = int(data[i + 1:eol]), eol + 2
        items: list[bytes] = []
        for _ in range(n):
            eol = data.find(b"\r\n", i)
            if eol < 0:
                return out, done
            head = data[i:eol]
            if head[:1] == b"$":
                size = int(head[1:])
                items.append(data[eol + 2:eol + 2 + size])
                i = eol + 2 + size + 2
            else:
                items.append(head[1:])
                i = eol + 2
        if i > len(data):
            break
        done = i
        if items and items[0] == b"pmessage":
            while ends[k][0] < i:
                k += 1
            out.append((ends[k][1], items[2], items[3]))
    return out, done


def _run(url: str, pattern: str, pipe: Any) -> None:
    u = urlsplit(url)
    sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379))
    db = (u.path or "/0").strip("/") or "0"
    if u.password:
        sock.sendall(_command(b"AUTH", u.password.encode()))
    if db != "0":
        sock.sendall(_command(b"SELECT", db.encode()))
    sock.sendall(_command(b"PSUBSCRIBE", pattern.encode()))
    chunks: list[tuple[int, bytes]] = []
    count, tail = 0, b""
    pipe.send("ready")
    while True:
        ready, _, _ = select.select([sock, pipe], [], [], 1.0)
        if sock in ready:
            chunk = sock.recv(1 << 20)
            now = time.monotonic_ns()
            if not chunk:
                break
            chunks.append((now, chunk))
            joined = tail + chunk
            count += joined.count(MARK) - tail.count(MARK)
            tail = joined[-len(MARK) + 1:]
        if pipe in ready:
            cmd = pipe.recv()
            if cmd == "count":
                pipe.send(count)
            elif cmd == "take":  # everything complete so far, parsed; a reply cut by the last read stays
                events, done = parse_complete(chunks)
                pipe.send(events)
                rest = b"".join(c for _, c in chunks)[done:]
                chunks = [(chunks[-1][0], rest)] if rest else []
                count, tail = rest.count(MARK), rest[-len(MARK) + 1:]
            elif cmd == "stop":
                break
    sock.close()


class Subscriber(PipedProcess):
    """`with Subscriber(redis_url, pattern) as sub:` count() so far, take() -> [(ns, channel, data)]."""

    def __init__(self, url: str, pattern: str) -> None:
        super().__init__(_run, url, pattern)

    def __enter__(self) -> Subscriber:
        self.start(10, "the Redis subscriber did not start")
        time.sleep(0.05)  # the PSUBSCRIBE is sent; give Redis a moment to register it
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self) -> int:
        self.pipe.send("count")
        return self.pipe.recv()

    def take(self) -> list[tuple[int, bytes, bytes]]:
        self.pipe.send("take")
        return self.pipe.recv()

    def wait_count(self, n: int, timeout: float, settle: float = 0.0) -> int:
        """Wait until n events arrived (then `settle` s more for strays) or until nothing arrives
        for `timeout` s; returns the count."""
        last, since = -1, time.monotonic()
        while True:
            c = self.count()
            if c != last:
                last, since = c, time.monotonic()
            if c >= n:
                if settle:
                    time.sleep(settle)
                    c = self.count()
                return c
            if time.monotonic() - since > timeout:
                return c
            time.sleep(0.01)
