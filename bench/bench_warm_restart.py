"""Warm restart benchmark: a start with a fresh cache against a cold start, in the same run.

    .venv/bin/python bench/bench_warm_restart.py [--exchange coinbase] [--symbols 100]
        [--downtime 0] [--speed 1]

One exchange session (adapter, pipeline, warm-up, live stream: what the worker runs) against the
local simulator, with the adapter's own REST rate limit (Coinbase: 10 requests/s; Binance: its
request weight), on a private Redis:
(a) cold start: an empty store, the full warm-up of N symbols x 5 timeframes;
(b) warm restart: the session stopped and a new one started on the same store (a deploy or a
    crash; the store is what survives) after `--downtime` real seconds, which fetches only what
    is missing since each stream's newest stored bar: nothing in the warm-up, the bars closed
    meanwhile by the live stream's gap fills (target: connected within 5 s for 100 symbols; 0
    warm-up requests). `--speed`: the simulated clock's speed (60: a 5m bar closes every 5 s).
Prints the REST requests each start made, the seconds until connected and warm/cold ratios.
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis.asyncio as aioredis

from streaming.clock import ENV as SIM_CLOCK_ENV
from streaming.redis_server import RedisServer
from streaming.sim import ExchangeSimulator, SimConfig
from streaming.worker.publisher import StatusPublisher
from streaming.worker.session import ExchangeSession

IDS = {"coinbase": 1, "binance": 2}


async def one_start(url: str, sim: ExchangeSimulator, exchange: str, symbols: list[str]) -> dict[str, Any]:
    redis = aioredis.from_url(url, decode_responses=True)
    ex_id = IDS[exchange]
    urls = sim.urls[exchange]
    row = {"id": ex_id, "name": exchange, "ws_url": urls.ws_url, "rest_url": urls.rest_url, "is_active": True}
    session = ExchangeSession(row, redis, StatusPublisher(redis, None, ex_id, exchange, "bench"), warm_up=True,
                              connect_timeout_s=600)
    began = time.perf_counter()
    try:
        result = await session.start({s: () for s in symbols})
        seconds = time.perf_counter() - began
        stream = result.get("stream") or {}
        return {"seconds": seconds, "rest_requests": result.get("rest_requests"),
                "warmup_requests": result.get("warmup_requests"), "candles": result["warm_up"].get("candles"),
                "gapfill_requests": stream.get("gapfill_requests", 0),
                "short": result["warm_up"].get("short"), "failed": result["warm_up"].get("failed"),
                "refused": len(result["warm_up"].get("refused") or {})}
    finally:
        await session.stop("bench")
        await redis.aclose()


async def run(cli: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        server = RedisServer(Path(d), persistent=False)
        url = server.start()
        try:
            config = SimConfig(symbols=cli.symbols, seed=5, speed=cli.speed, start_ms=None, recordings=None,
                               include_recorded_products=False)
            async with ExchangeSimulator(config) as sim:
                os.environ[SIM_CLOCK_ENV] = sim.clock_setting()  # this process runs the simulator's clock
                symbols = sim.symbols(cli.exchange)
                cold = await one_start(url, sim, cli.exchange, symbols)
                await asyncio.sleep(cli.downtime)
                warm = await one_start(url, sim, cli.exchange, symbols)
        finally:
            server.stop()
    streams = len(symbols) * 5
    print(f"warm restart, {cli.exchange}: {len(symbols)} symbols x 5 timeframes = {streams} streams, "
          f"simulator at 127.0.0.1 (speed {cli.speed:g}), the adapter's REST rate limit, "
          f"{cli.downtime:g} s down between the starts")
    print(f"{'':18}{'seconds to connected':>22}{'REST requests':>15}{'warm-up requests':>18}{'candles':>9}")
    for name, r in (("cold start", cold), ("warm restart", warm)):
        print(f"{name:18}{r['seconds']:>22.2f}{r['rest_requests']!s:>15}{r['warmup_requests']!s:>18}"
              f"{r['candles']!s:>9}")
    ratio = warm["seconds"] / cold["seconds"] if cold["seconds"] else float("nan")
    req_ratio = (warm["rest_requests"] or 0) / cold["rest_requests"] if cold["rest_requests"] else float("nan")
    for name, r in (("cold start", cold), ("warm restart", warm)):
        if r["short"] or r["failed"] or r["refused"]:
            print(f"  {name}: {r['short']} streams short, {r['failed']} failed, {r['refused']} symbols refused")
    print(f"ratio warm/cold: {ratio:.3f} of the time, {req_ratio:.3f} of the REST requests "
          f"(gap fills by the live stream on the warm restart: {warm['gapfill_requests']})")
    verdict = "met" if warm["seconds"] <= 5.0 and warm["warmup_requests"] == 0 else "NOT met"
    print(f"target (connected within 5 s, no warm-up request): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchange", choices=sorted(IDS), default="coinbase")
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--downtime", type=float, default=0.0, help="real seconds between the two starts")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
