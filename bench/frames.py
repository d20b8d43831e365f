"""Pre-encoded Binance kline traffic for the load server: whole WebSocket frames in one numpy
buffer, with only the timestamps patched in place from one block of bars to the next.

A stream is a (symbol, timeframe) pair numbered `sid = symbol * 5 + timeframe index`; symbol k
is `S{k:05d}USDT`. Traffic is a sequence of rounds, one frame per stream of a connection per
round, in the connection's stream order. A pattern fixes what round r of a stream holds:

- MIXED (`per_close` P): the stream is P frames into a bar at a phase of its own (sid mod P),
  P - 1 forming frames (x: false) then the closing frame (x: true): one close per P frames,
  closes spread evenly through the rounds, like live Binance traffic (~150 frames per 5m bar).
- CLOSES: every frame closes the next bar (warm-up history, and the close storm: one round =
  every stream closing in the same instant).

A block is the pattern's period (P rounds holding 1 bar per stream, or CLOSES_BLOCK rounds of
as many bars); block j is block 0 with every bar moved j * bars_per_block bars on, which only
changes the 13-digit E, t and T fields: fixed width, so the frames keep their length and
position and the wire bytes of block j are block 0 with those digits rewritten (vectorised).
Pure: no I/O; the close keys (sid, bar) let the bench join close events to send times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

TIMEFRAMES = ("5m", "15m", "1h", "4h", "1d")
STEP_MS = {"5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000}
T0 = 1_786_320_000_000  # a UTC midnight: bar 0 of every timeframe opens here (13 digits for ~90k days)
MIXED, CLOSES = "mixed", "closes"
CLOSES_BLOCK = 7  # closing bars per block of the CLOSES pattern: prices repeat every 7 bars
DIGITS = 13
_POW10 = 10 ** np.arange(DIGITS - 1, -1, -1, dtype=np.int64)
_SPAN = np.arange(DIGITS, dtype=np.int64)
_STREAM_RE = re.compile(r"^s(\d{5})usdt@kline_(5m|15m|1h|4h|1d)$")


def symbol(k: int) -> str:
    return f"S{k:05d}USDT"


def stream_name(sid: int) -> str:
    k, f = divmod(sid, len(TIMEFRAMES))
    return f"s{k:05d}usdt@kline_{TIMEFRAMES[f]}"


def streams_of(n_symbols: int, first: int = 0) -> list[int]:
    """Every timeframe of symbols first..first+n-1, as the worker subscribes them."""
    return list(range(first * len(TIMEFRAMES), (first + n_symbols) * len(TIMEFRAMES)))


def parse_stream(name: str) -> int | None:
    m = _STREAM_RE.match(name)
    return int(m.group(1)) * len(TIMEFRAMES) + TIMEFRAMES.index(m.group(2)) if m else None


def close_key(sym: str, timeframe: str, open_ms: int) -> tuple[int, int] | None:
    """(sid, bar) of a close event's symbol, timeframe and open time; None when not ours."""
    if timeframe not in STEP_MS or not (sym.startswith("S") and sym.endswith("USDT") and sym[1:-4].isdigit()):
        return None
    bar, rem = divmod(open_ms - T0, STEP_MS[timeframe])
    return (int(sym[1:-4]) * len(TIMEFRAMES) + TIMEFRAMES.index(timeframe), bar) if not rem else None


def ws_header(n: int) -> bytes:
    """Header of an unmasked, final text frame of n payload bytes (server to client)."""
    if n < 126:
        return bytes((0x81, n))
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big")
    return b"\x81\x7f" + n.to_bytes(8, "big")


def _kline(sid: int, bar: int, pos: int, closed: bool) -> tuple[bytes, int]:
    """One frame (header included) and the offset of its E digits (t and T follow at fixed offsets)."""
    k, f = divmod(sid, len(TIMEFRAMES))
    tf = TIMEFRAMES[f]
    t = T0 + bar * STEP_MS[tf]
    base = 10.0 + k % 97
    o = base * (1 + ((bar * 31 + k) % 13 - 6) / 1000)
    c = base * (1 + ((bar * 31 + pos * 7 + k) % 13 - 6) / 1000)
    h, lo = max(o, c) * 1.002, min(o, c) * 0.998
    sym = symbol(k)
    head = f'{{"stream":"{stream_name(sid)}","data":{{"e":"kline","E":'
    body = (f'{head}{t + STEP_MS[tf]},"s":"{sym}","k":{{"t":{t},"T":{t + STEP_MS[tf] - 1},"s":"{sym}",'
            f'"i":"{tf}","f":100,"L":{200 + pos},"o":"{o:.8f}","c":"{c:.8f}","h":"{h:.8f}","l":"{lo:.8f}",'
            f'"v":"{100 + pos * 1.5:.8f}","n":{pos + 1},"x":{"true" if closed else "false"},'
            f'"q":"{(100 + pos) * base:.8f}","V":"{50 + pos:.8f}","Q":"{(50 + pos) * base:.8f}","B":"0"}}}}}}')
    payload = body.encode()
    header = ws_header(len(payload))
    return header + payload, len(header) + len(head)


# offsets of the t and T digits from the E digits: ,"s":"SxxxxxUSDT","k":{"t":  and  ,"T":
_T_AFTER_E = DIGITS + len(',"s":"S00000USDT","k":{"t":')
_TT_AFTER_E = _T_AFTER_E + DIGITS + len(',"T":')


@dataclass
class Block:
    """One period of a pattern for one connection's streams, as wire bytes."""

    buf: np.ndarray          # uint8, every frame back to back
    ends: np.ndarray         # int64 byte offset after each frame
    e_pos: np.ndarray        # int64 offset of each frame's E digits
    t_open: np.ndarray       # int64 open time of each frame's bar in block 0
    step: np.ndarray         # int64 bar length (ms) of each frame's stream
    close_idx: np.ndarray    # int64 frame indices of the closing frames (ascending)
    close_sid: np.ndarray    # int64 their streams
    close_bar: np.ndarray    # int64 their bars in block 0
    rounds: int
    bars_per_block: int
    n_streams: int

    @property
    def frames(self) -> int:
        return self.rounds * self.n_streams

    def start(self, i: int) -> int:
        return int(self.ends[i - 1]) if i else 0

    def patch(self, a: int, b: int, block: int) -> None:
        """Rewrite the E/t/T digits of frames a..b-1 for block number `block`."""
        step = self.step[a:b]
        t = self.t_open[a:b] + block * self.bars_per_block * step
        e = self.e_pos[a:b, None]
        for offset, value in ((0, t + step), (_T_AFTER_E, t), (_TT_AFTER_E, t + step - 1)):
            self.buf[e + offset + _SPAN] = (value[:, None] // _POW10 % 10 + 48).astype(np.uint8)

    def wire(self, a: int, b: int, block: int) -> bytes:
        self.patch(a, b, block)
        return self.buf[self.start(a):int(self.ends[b - 1])].tobytes()

    def closes_in(self, a: int, b: int, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(sids, bars) of the closing frames among frames a..b-1 of block number `block`."""
        lo, hi = np.searchsorted(self.close_idx, (a, b))
        return self.close_sid[lo:hi], self.close_bar[lo:hi] + block * self.bars_per_block


def build_block(sids: list[int], pattern: str, per_close: int = 150, bar_offset: int = 0) -> Block:
    """Block 0 of `pattern` for streams `sids` (one connection, in its order); bars start at bar_offset."""
    if pattern == MIXED:
        rounds, bars_per_block = per_close, 1
    elif pattern == CLOSES:
        rounds, bars_per_block = CLOSES_BLOCK, CLOSES_BLOCK
    else:
        raise ValueError(f"unknown pattern {pattern!r}")
    n = len(sids)
    parts: list[bytes] = []
    e_pos = np.empty(rounds * n, np.int64)
    t_open = np.empty(rounds * n, np.int64)
    step = np.empty(rounds * n, np.int64)
    ends = np.empty(rounds * n, np.int64)
    closes: list[tuple[int, int, int]] = []
    offset = 0
    for r in range(rounds):
        for i, sid in enumerate(sids):
            if pattern == MIXED:
                bar, pos = divmod(r + sid % per_close, per_close)
                closed = pos == per_close - 1
            else:
                bar, pos, closed = r, per_close - 1, True
            bar += bar_offset
            frame, e = _kline(sid, bar, pos, closed)
            j = r * n + i
            tf = TIMEFRAMES[sid % len(TIMEFRAMES)]
            e_pos[j], t_open[j], step[j] = offset + e, T0 + bar * STEP_MS[tf], STEP_MS[tf]
            parts.append(frame)
            offset += len(frame)
            ends[j] = offset
            if closed:
                closes.append((j, sid, bar))
    c = np.array(closes, np.int64).reshape(-1, 3)
    return Block(np.frombuffer(b"".join(parts), np.uint8).copy(), ends, e_pos, t_open, step,
                 c[:, 0].copy(), c[:, 1].copy(), c[:, 2].copy(), rounds, bars_per_block, n)
