"""Alert delivery latency: alert published on stream:alerts -> webhook received, with no rate limit.

    .venv/bin/python bench/bench_notify.py [--alerts N] [--rate PER_S] [--burst N]

Starts its own Redis server, a SQLite database and an HTTP receiver on 127.0.0.1 (in a thread of
its own), runs the delivery service in-process and publishes alerts the way the worker's close
script does (XADD). Latency = receiver arrival - the instant before XADD (one monotonic clock).
Baseline, in the same run: a bare signed POST of the same body from this process to the same
receiver, timed the same way. Prints p50/p99 of both and their ratio (goal: p99 < 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis
from aiohttp import web

from streaming import keys
from streaming.db.engine import make_engine
from streaming.db.migrate import upgrade
from streaming.notify import store
from streaming.notify.events import AlertEvent, encode_alert
from streaming.notify.service import NotifyService, ServiceConfig
from streaming.notify.webhook import DELIVERY_HEADER, body, sign
from streaming.redis_server import RedisServer

SECRET = "bench-secret"


class Receiver:
    """Records the arrival time of each delivery id, in its own thread and event loop."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.perf_counter()
        await request.read()
        self.arrived[request.headers.get(DELIVERY_HEADER, "")] = at
        return web.Response(text="ok")

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        threading.Thread(target=serve, daemon=True).start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)


def alert(i: int) -> AlertEvent:
    ts = 1_786_309_200_000 + i * 300_000
    return AlertEvent(f"1:S{i % 500}-USD:5m:{ts}:level_-200", 1, "coinbase", f"S{i % 500}-USD", "5m", "level",
                      "level_-200", -200, -205.0, -190.0, -15.0, 100.0 + i, ts, "2026-08-09T21:05:48+00:00")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def line(label: str, lat: list[float]) -> str:
    return (f"{label}: n={len(lat)} p50 {statistics.median(lat):.2f} ms  p99 {pct(lat, 0.99):.2f} ms  "
            f"max {max(lat):.2f} ms")


async def wait_all(receiver: Receiver, ids: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(i in receiver.arrived for i in ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sum(i in receiver.arrived for i in ids)} of {len(ids)} arrived")
        await asyncio.sleep(0.01)


async def published(r: aioredis.Redis, receiver: Receiver, alerts: list[AlertEvent], gap_s: float) -> list[float]:
    sent: dict[str, float] = {}
    for a in alerts:
        sent[a.id] = time.perf_counter()
        await r.xadd(keys.ALERTS_STREAM, {"json": encode_alert(a)}, maxlen=100_000, approximate=True)
        if gap_s:
            await asyncio.sleep(gap_s)
    await wait_all(receiver, list(sent))
    return [(receiver.arrived[i] - t) * 1000 for i, t in sent.items()]


async def baseline(receiver: Receiver, alerts: list[AlertEvent], gap_s: float) -> list[float]:
    """The same signed body POSTed straight to the receiver: what any delivery costs at least."""
    lat = []
    async with aiohttp.ClientSession() as session:
        for a in alerts:
            key = f"base:{a.id}"
            payload = body([a], False)
            t0 = time.perf_counter()
            ts = int(time.time())
            async with session.post(f"http://127.0.0.1:{receiver.port}/base", data=payload,
                                    headers={"X-Livermore-Signature": sign(SECRET.encode(), ts, payload),
                                             "X-Livermore-Timestamp": str(ts), DELIVERY_HEADER: key}) as resp:
                await resp.read()
            lat.append((receiver.arrived[key] - t0) * 1000)
            if gap_s:
                await asyncio.sleep(gap_s)
    return lat


async def run(args: argparse.Namespace, redis_url: str, db_url: str) -> None:
    receiver = Receiver()
    receiver.start()
    engine = make_engine(db_url)
    with engine.begin() as conn:
        d = store.add_destination(conn, "bench", f"http://127.0.0.1:{receiver.port}/hook",
                                  {"BENCH_SECRET": SECRET}, "BENCH_SECRET")
        store.add_subscription(conn, d)
    r = aioredis.Redis.from_url(redis_url)
    svc = NotifyService(r, engine, ServiceConfig(consumer="bench"), env={"BENCH_SECRET": SECRET})
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop))
    await svc.ready.wait()
    gap = 1.0 / args.rate
    warm = [alert(10_000_000 + i) for i in range(50)]
    await published(r, receiver, warm, gap)  # connections, scripts, imports
    steady = [alert(i) for i in range(args.alerts)]
    base = await baseline(receiver, steady, gap)
    lat = await published(r, receiver, steady, gap)
    burst = await published(r, receiver, [alert(5_000_000 + i) for i in range(args.burst)], 0)
    stop.set()
    await task
    await r.aclose()
    engine.dispose()
    receiver.stop()
    print(line(f"baseline: bare signed POST to the receiver, {args.rate:g}/s", base))
    print(line(f"notify:   XADD -> webhook received, {args.rate:g}/s, no rate limit", lat) + "  (goal p99 < 50 ms)")
    print(f"ratio notify/baseline: p50 {statistics.median(lat) / statistics.median(base):.1f}x  "
          f"p99 {pct(lat, 0.99) / pct(base, 0.99):.1f}x")
    print(line(f"burst:    {args.burst} alerts XADDed at once (up to 8 requests in flight)", burst))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=2000, help="alerts in the steady run")
    ap.add_argument("--rate", type=float, default=200.0, help="alerts per second in the steady run")
    ap.add_argument("--burst", type=int, default=500, help="alerts published at once afterwards")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db_url = f"sqlite:///{d}/bench.db"
        upgrade(db_url)
        server = RedisServer(Path(d) / "redis", persistent=False)
        redis_url = server.start()
        try:
            asyncio.run(run(args, redis_url, db_url))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
