"""Pipeline benchmark: prints figures and ratios against baselines measured in the same run.

    .venv/bin/python bench/bench_pipeline.py [--streams 2000] [--frames 20000]

(a) end-to-end closing frames/s: loopback WebSocket -> Binance parser -> CandlePipeline -> real
    Redis (store, exactly-once close script, MACD-V, alerts), as a ratio to the raw loopback
    `websockets` receive rate of the same frames (target >= 0.35);
(b) latency from receipt of a closing frame to its close event reaching a Redis subscriber,
    with N live streams: paced (closes spread over a second, like real streams) and burst (all
    N streams close in the same instant, a bucket boundary) (target p99 < 10 ms);
(c) incremental MACD-V update vs pandas recompute over 300 candles (target >= 100x);
(d) memory per live stream (tracemalloc; target < 10 KB).
Only 127.0.0.1 is used; Redis is a private redis-server started here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
import redis
import redis.asyncio as aioredis
from baseline import raw_rate, receive, serve

from streaming.adapters.binance.parse import KLINE, parse_frame
from streaming.indicators.macd_v import MacdV
from streaming.indicators.macd_v_batch import macd_v_series
from streaming.models import Candle, CandleUpdate
from streaming.pipeline import CandlePipeline, PipelineConfig
from streaming.redis_server import RedisServer

EX = 2
T0 = 1_700_000_100_000 - 1_700_000_100_000 % 300_000
# both ends of the loopback connection (websockets' defaults otherwise, compression included)
WS = {"max_size": None, "max_queue": None}


def symbols(n: int) -> list[str]:
    return [f"S{i:05d}USDT" for i in range(n)]


def kline_frame(sym: str, ts: int, price: float, closed: bool = True) -> str:
    return json.dumps({"stream": f"{sym.lower()}@kline_5m", "data": {
        "e": "kline", "E": ts + 300_000, "s": sym, "k": {
            "t": ts, "T": ts + 299_999, "s": sym, "i": "5m", "f": 1, "L": 2, "o": f"{price:.4f}",
            "c": f"{price * 1.001:.4f}", "h": f"{price * 1.01:.4f}", "l": f"{price * 0.99:.4f}", "v": "12.5",
            "n": 3, "x": closed, "q": "1", "V": "1", "Q": "1", "B": "0"}}})


def mixed_frames(syms: list[str], per_close: int) -> list[str]:
    """Realistic kline traffic: per stream, `per_close - 1` forming updates (x:false) then the
    closing frame of the bar, streams staggered so closes are spread through the run (Binance
    sends an update about every 2 s: ~150 frames per 5m bar)."""
    out = []
    for r in range(per_close):
        for i, s in enumerate(syms):
            k = r + i
            bar, pos = divmod(k, per_close)
            out.append(kline_frame(s, T0 + bar * 300_000, 100 + (i % 50) + (pos % 7) * 0.3,
                                   closed=pos == per_close - 1))
    return out


def frames_for(syms: list[str], bars: int, first_bar: int = 0) -> list[str]:
    out = []
    for b in range(first_bar, first_bar + bars):
        for i, s in enumerate(syms):
            out.append(kline_frame(s, T0 + b * 300_000, 100 + (i % 50) + (b % 7) * 0.3))
    return out


def feed(p: CandlePipeline, raw: str) -> None:
    m = parse_frame(raw)
    if m.kind == KLINE:
        p.listener.on_candle(CandleUpdate("binance", m.symbol, m.interval, m.candle, m.closed))


async def pipeline_rate(url_redis: str, frames: list[str], syms: list[str]) -> tuple[float, dict]:
    """All frames through parser + pipeline until every closing frame is published."""
    closes = sum('"x": true' in f for f in frames)
    r = aioredis.Redis.from_url(url_redis)
    await r.flushall()
    p = CandlePipeline(r, EX, "binance", symbol_pools=syms, timeframes=("5m",), config=PipelineConfig())
    runner = asyncio.create_task(p.run())
    server, url = await serve(frames, **WS)
    # timed like the raw baseline (connect to last frame), plus until the last close is out
    received_s = await receive(url, len(frames), lambda raw: feed(p, raw), **WS)
    t = time.perf_counter()
    while p.counters["published"] + p.counters["duplicates"] + p.counters["corrections"] < closes:
        await asyncio.sleep(0.001)
    dt = received_s + time.perf_counter() - t
    await p.close()
    await runner
    server.close()
    await server.wait_closed()
    stats = p.stats()
    await r.aclose()
    return len(frames) / dt, stats


class Arrivals:
    """A subscriber thread stamping each close event's arrival (same perf_counter clock)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.ps = self.client.pubsub(ignore_subscribe_messages=True)
        self.ps.psubscribe(f"channel:exchange:{EX}:candle:close:*")
        self.times: dict[tuple[str, int], int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            m = self.ps.get_message(timeout=0.05)
            if m and m["type"] == "pmessage":
                now = time.perf_counter_ns()
                d = json.loads(m["data"])
                self.times[(d["symbol"], d["timestamp"])] = now

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.ps.close()
        self.client.close()


async def latency(url_redis: str, syms: list[str], pace: float | None, batch_max: int) -> list[float]:
    r = aioredis.Redis.from_url(url_redis)
    await r.flushall()
    p = CandlePipeline(r, EX, "binance", symbol_pools=syms, timeframes=("5m",),
                       config=PipelineConfig(batch_max=batch_max))
    # warm every stream (state in memory, as after warm-up), then the measured bar
    for raw in frames_for(syms, 30):
        feed(p, raw)
    await p.drain()
    arrivals = Arrivals(url_redis)
    time.sleep(0.2)
    receipts: dict[tuple[str, int], int] = {}
    runner = asyncio.create_task(p.run())
    frames = frames_for(syms, 1, first_bar=30)

    def receipt(raw: str) -> None:
        m = parse_frame(raw)
        receipts[(m.symbol, m.candle.timestamp)] = time.perf_counter_ns()
        p.listener.on_candle(CandleUpdate("binance", m.symbol, m.interval, m.candle, m.closed))

    server, url = await serve(frames, pace, **WS)
    await receive(url, len(frames), receipt, **WS)
    deadline = time.monotonic() + 30
    while len(arrivals.times) < len(frames) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    arrivals.close()
    await p.close()
    await runner
    server.close()
    await server.wait_closed()
    await r.aclose()
    return [(arrivals.times[k] - t) / 1e6 for k, t in receipts.items() if k in arrivals.times]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def macd_cost() -> tuple[float, float]:
    cs = [Candle(T0 + i * 300_000, 100 + i % 7, 101 + i % 5, 99 - i % 3, 100 + i % 11 * 0.1, 1) for i in range(300)]
    df = pd.DataFrame({"high": [c.high for c in cs], "low": [c.low for c in cs], "close": [c.close for c in cs]})
    m = MacdV.from_candles(cs[:-1])
    n = 20_000
    t = time.perf_counter()
    for _ in range(n):
        m2 = m  # the same state object: the cost of one update
        m2.update(101.0, 99.0, 100.5)
    inc = (time.perf_counter() - t) / n
    k = 30
    t = time.perf_counter()
    for _ in range(k):
        macd_v_series(df)
    full = (time.perf_counter() - t) / k
    return inc, full


async def memory_per_stream(url_redis: str, n: int) -> float:
    r = aioredis.Redis.from_url(url_redis)
    await r.flushall()
    syms = symbols(n)
    p = CandlePipeline(r, EX, "binance", symbol_pools=syms, timeframes=("5m",))
    await p.process([CandleUpdate("binance", "S00000USDT", "5m", Candle(T0, 1, 2, 0.5, 1.5, 1), True)])
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for raw in frames_for(syms, 40):
        feed(p, raw)
    await p.drain()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    await r.aclose()
    return grown / n


def run_a(url: str, syms: list[str], frames: list[str], mixed: list[str], mixed_syms: list[str],
          loop: str) -> None:
    async def go() -> list[tuple[float, float, dict]]:
        out = []
        for fs, ss in ((frames, syms), (mixed, mixed_syms)):
            raw = await raw_rate(fs, **WS)
            e2e, stats = await pipeline_rate(url, fs, ss)
            out.append((raw, e2e, stats))
        return out

    if loop == "uvloop":
        import uvloop
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            (raw, e2e, stats), (mraw, me2e, mstats) = runner.run(go())
    else:
        (raw, e2e, stats), (mraw, me2e, mstats) = asyncio.run(go())
    n_close = sum('"x": true' in f for f in mixed)
    print(f"(a) [{loop} event loop] end-to-end frames/s (Binance parser + pipeline + real Redis) "
          "as a ratio to raw loopback `websockets` receive of the same frames:")
    print(f"    mixed (realistic, the target's case: {len(mixed):,} frames, 1 closing per {len(mixed) // n_close} "
          f"frames, {len(mixed_syms)} streams): raw {mraw:,.0f} frames/s, pipeline {me2e:,.0f} frames/s  "
          f"ratio {me2e / mraw:.2f} (target >= 0.35)  published={mstats.get('published')}")
    print(f"    worst case (every frame a closing kline, {len(frames):,} frames, {len(syms)} streams): "
          f"raw {raw:,.0f} frames/s, pipeline {e2e:,.0f} closes/s  ratio {e2e / raw:.2f}  "
          f"published={stats.get('published')}")


async def main(args: argparse.Namespace, url: str) -> None:
    syms = symbols(args.streams)
    for label, pace in (("spread over 1 s (realistic: Binance x:true frames arrive 0.1-1.8 s after the bar)", 1.0),
                        ("all at once (burst: every stream closes in the same instant)", None)):
        for batch in (128, 512):
            lat = await latency(url, syms, pace, batch)
            print(f"(b) {args.streams} streams, closes {label}, batch_max={batch}: n={len(lat)} "
                  f"p50 {statistics.median(lat):.2f} ms  p99 {pct(lat, 0.99):.2f} ms  "
                  f"max {max(lat):.2f} ms (target p99 < 10 ms)")
    inc, full = macd_cost()
    print(f"(c) MACD-V incremental update {inc * 1e6:.2f} us vs pandas recompute over 300 candles "
          f"{full * 1e3:.2f} ms: ratio {full / inc:,.0f}x (target >= 100x)")
    mem = await memory_per_stream(url, args.streams)
    print(f"(d) memory per live stream: {mem / 1024:.2f} KB (target < 10 KB)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=20_000)
    ap.add_argument("--mixed-streams", type=int, default=400)
    ap.add_argument("--per-close", type=int, default=150, help="mixed run: frames per stream per closing frame")
    cli = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        server = RedisServer(Path(d), persistent=False)
        redis_url = server.start()
        try:
            all_syms = symbols(cli.streams)
            worst = frames_for(all_syms, max(1, cli.frames // cli.streams))
            m_syms = symbols(cli.mixed_streams)
            mixed = mixed_frames(m_syms, cli.per_close)
            run_a(redis_url, all_syms, worst, mixed, m_syms, "asyncio")
            try:
                import uvloop  # noqa: F401  (installed as a dependency of another package; optional)
            except ImportError:
                print("(a) [uvloop] not installed: skipped")
            else:
                run_a(redis_url, all_syms, worst, mixed, m_syms, "uvloop")
            asyncio.run(main(cli, redis_url))
        finally:
            server.stop()
