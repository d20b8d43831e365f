"""The measured scenarios, each against whatever is connected to the load server (a worker, the
peer, or ceiling clients) with closes counted at a Subscriber. Every time is monotonic ns.

Lag of a close = its event's arrival at the subscriber - the send time of its closing frame.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import orjson

from bench import frames as fr
from bench.ceiling import CeilingClient
from bench.loadserver import LoadServer, Plan, Sent
from bench.processes import CpuMeter, ScriptMeter
from bench.subscriber import Subscriber

Event = tuple[int, bytes, bytes]
MAX_LAG_MS = 100.0
PACE_TOLERANCE = 0.95  # a paced step must send at least this share of the requested rate


def worker_key(channel: bytes, data: bytes) -> tuple[int, int] | None:
    """(sid, bar) of a Livermore close event."""
    try:
        e = orjson.loads(data)
        return fr.close_key(e["symbol"], e["timeframe"], e["timestamp"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


def peer_key(channel: bytes, data: bytes) -> int | None:
    """sid of a keyspace notification on cryptofeed's `candles{tf}-BINANCE-S00042-USDT`."""
    key = channel.decode().partition(":")[2]
    head, _, sym = key.partition("-BINANCE-")
    tf = head.removeprefix("candles")
    if tf not in fr.TIMEFRAMES or not sym.startswith("S") or not sym[1:6].isdigit():
        return None
    return int(sym[1:6]) * len(fr.TIMEFRAMES) + fr.TIMEFRAMES.index(tf)


def match(sent: Sent, events: Sequence[Event], key: Callable[[bytes, bytes], object]) -> tuple[np.ndarray, int]:
    """Lags (ms) of the sent closes that arrived, and how many sent closes never did. A key
    that is a bare sid (the peer's notifications carry no bar) matches that stream's close."""
    by_key = sent.send_times()
    by_sid = {k[0]: t for k, t in by_key.items()}
    lags, seen = [], set()
    for arrived, channel, data in events:
        k = key(channel, data)
        t = by_sid.get(k) if isinstance(k, int) else by_key.get(k)  # type: ignore[arg-type]
        if t is not None and k not in seen:
            seen.add(k)
            lags.append((arrived - t) / 1e6)
    return np.array(lags), sent.closes - len(seen)


def pct(xs: np.ndarray, q: float) -> float:
    return float(np.percentile(xs, q)) if len(xs) else float("nan")


def warm(server: LoadServer, sub: Subscriber, rounds: int, batch_closes: int = 25_000) -> None:
    """Closes-only history, bars 0..rounds-1 of every stream, in batches each waited for."""
    streams = sum(server.connections())
    step = max(1, batch_closes // max(1, streams))
    for r in range(0, rounds, step):
        sent = server.run(Plan(fr.CLOSES, r, min(step, rounds - r)))
        got = sub.wait_count(sent.closes, timeout=30)
        sub.take()
        if got != sent.closes:
            raise RuntimeError(f"warm-up: {got} of {sent.closes} closes arrived")


@dataclass
class Flood:
    rate: float       # frames / (first frame sent -> last close event)
    p99_ms: float
    lost: int


def flood(server: LoadServer, sub: Subscriber, start_round: int, rounds: int, bar_offset: int) -> Flood:
    """MIXED rounds as fast as the client reads them (TCP flow control paces the server)."""
    sent = server.run(Plan(fr.MIXED, start_round, rounds, bar_offset=bar_offset))
    sub.wait_count(sent.closes, timeout=10)
    events = sub.take()
    lags, lost = match(sent, events, worker_key)
    last = max((e[0] for e in events), default=sent.last_ns)
    return Flood(sent.frames / ((last - sent.first_ns) / 1e9), pct(lags, 99), lost)


@dataclass
class Step:
    requested: float  # frames/s the load server was asked for
    rate: float       # frames/s it sent: frames / (first -> last frame written)
    p50_ms: float
    p99_ms: float
    lost: int
    overrun: bool

    @property
    def short(self) -> bool:
        """The load server sent slower than asked (it shares the cores with the worker): the step
        says nothing about the requested rate."""
        return self.rate < PACE_TOLERANCE * self.requested

    @property
    def ok(self) -> bool:
        return self.lost == 0 and not self.overrun and not self.short and self.p99_ms <= MAX_LAG_MS


def paced(server: LoadServer, sub: Subscriber, rate: float, seconds: float, start_round: int,
          bar_offset: int) -> tuple[Step, int]:
    """`rate` frames/s of MIXED rounds for ~`seconds`; returns the step and the next round."""
    streams = sum(server.connections())
    rounds = max(1, round(rate * seconds / streams))
    sent = server.run(Plan(fr.MIXED, start_round, rounds, rate=rate, bar_offset=bar_offset))
    sub.wait_count(sent.closes, timeout=5)
    lags, lost = match(sent, sub.take(), worker_key)
    time.sleep(0.3)  # a quiet moment between steps
    span_s = (sent.last_ns - sent.first_ns) / 1e9
    achieved = sent.frames / span_s if span_s > 0 else 0.0
    return Step(rate, achieved, pct(lags, 50), pct(lags, 99), lost, sent.overrun), start_round + rounds


def search(server: LoadServer, sub: Subscriber, start_rate: float, steps: int, seconds: float,
           start_round: int, bar_offset: int, log: Callable[[str], None]) -> tuple[float, list[Step], int]:
    """Highest rate SENT by a step meeting 0 lost and p99 <= 100 ms: grow the requested rate by
    1.5x until a step fails, then bisect; a step the load server could not send at the requested
    rate fails (it was not a test of that rate). Returns (best passing sent rate or 0, the steps,
    the next round)."""
    lo, hi, rate, best, done = 0.0, 0.0, start_rate, 0.0, []
    for _ in range(steps):
        step, start_round = paced(server, sub, rate, seconds, start_round, bar_offset)
        done.append(step)
        log(f"    paced {step.requested:>9,.0f} frames/s, sent {step.rate:>9,.0f}: p50 {step.p50_ms:7.1f} ms  "
            f"p99 {step.p99_ms:7.1f} ms  lost {step.lost}{'  fell behind' if step.overrun else ''}"
            f"{'  server short' if step.short else ''}  {'ok' if step.ok else 'FAIL'}")
        if step.ok:
            lo, best = rate, max(best, step.rate)
            rate = (lo + hi) / 2 if hi else rate * 1.5
        else:
            hi = rate
            rate = (lo + hi) / 2 if lo else rate / 1.5
    return best, done, start_round


@dataclass
class Storm:
    last_ms: float    # first closing frame sent -> last close event
    p50_ms: float
    lost: int
    cpu_ms: dict[str, float] = field(default_factory=dict)  # each measured process's CPU time in it
    script_ms: float | None = None  # Redis's time in scripts in it (INFO commandstats)

    @property
    def cpu_total_ms(self) -> float:
        return sum(self.cpu_ms.values())


def storm(server: LoadServer, sub: Subscriber, round_no: int, key: Callable[[bytes, bytes], object],
          cpu: CpuMeter | None = None, script: ScriptMeter | None = None) -> Storm:
    """One CLOSES round written at once: every stream closes in the same instant. With `cpu`,
    the CPU time its processes took from the first frame sent until the last event was counted
    (the subscriber is asked every 10 ms); with `script`, Redis's time in scripts meanwhile."""

    def go() -> None:
        if cpu is not None:
            cpu.start()
        if script is not None:
            script.start()

    sent = server.run(Plan(fr.CLOSES, round_no, 1, chunk=1 << 30), at_go=go)
    sub.wait_count(sent.closes, timeout=10)
    taken = cpu.taken() if cpu is not None else {}
    script_ms = script.taken() if script is not None else None
    events = sub.take()
    lags, lost = match(sent, events, key)
    last = max((e[0] for e in events), default=sent.first_ns)
    return Storm((last - sent.first_ns) / 1e6, pct(lags, 50), lost, taken, script_ms)


def storms(server: LoadServer, sub: Subscriber, first_round: int, repeats: int,
           key: Callable[[bytes, bytes], object], quiet_s: float = 1.0, cpu: CpuMeter | None = None,
           script: ScriptMeter | None = None) -> list[Storm]:
    out = []
    for i in range(repeats):
        time.sleep(quiet_s)
        out.append(storm(server, sub, first_round + i, key, cpu, script))
    return out


@dataclass
class CatchUp:
    seconds: float    # first frame sent -> last close event
    closes: int
    lost: int
    reconnects: int   # connections the worker opened meanwhile


def catch_up(server: LoadServer, sub: Subscriber, first_round: int, bars: int, timeout: float = 300) -> CatchUp:
    """`bars` closed bars of every stream written at once, as after an outage: a backlog far
    longer than a keepalive round, which must cost no close and no connection."""
    before = server.accepted()
    sent = server.run(Plan(fr.CLOSES, first_round, bars, chunk=1 << 30))
    sub.wait_count(sent.closes, timeout=timeout)
    events = sub.take()
    _, lost = match(sent, events, worker_key)
    last = max((e[0] for e in events), default=sent.first_ns)
    return CatchUp((last - sent.first_ns) / 1e9, sent.closes, lost, server.accepted() - before)


def ceiling(server: LoadServer, groups: list[list[int]], clients: int, repeats: int, rounds: int,
            bar_offset: int) -> list[float]:
    """Frames/s that `clients` plain websockets clients (own processes, `groups` streams each)
    receive together: frames / (first frame sent -> last frame received)."""
    opened: list[CeilingClient] = []
    try:
        for _ in range(clients):
            opened.append(CeilingClient(server.ws_url, groups).__enter__())
        server.wait_streams(sum(c.streams for c in opened))
        rates, g = [], 0
        for _ in range(repeats):
            for c in opened:
                c.start(rounds)
            time.sleep(0.05)
            sent = server.run(Plan(fr.MIXED, g, rounds, bar_offset=bar_offset))
            end = max(c.finished() for c in opened)
            rates.append(sent.frames / ((end - sent.first_ns) / 1e9))
            g += rounds
        return rates
    finally:
        for c in opened:
            c.__exit__(None, None, None)
        server.wait_streams(0, timeout=15)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")
