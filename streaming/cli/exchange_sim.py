"""`livermore exchange-sim`: the local exchange simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

from streaming.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("exchange-sim", help="serve simulated Coinbase/Binance/Binance.US on loopback")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--coinbase-port", type=int, default=0, help="0 = any free port")
    p.add_argument("--binance-port", type=int, default=0)
    p.add_argument("--binance-us-port", type=int, default=0)
    p.add_argument("--symbols", type=int, default=3, help="synthetic symbols per exchange (SIM1-USD, SIM1USDT...)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--update-interval", type=float, default=0.5, help="real seconds between candle updates")
    p.add_argument("--gap-probability", type=float, default=0.0, help="chance a 5m bucket has no trade")
    p.add_argument("--recordings", type=Path, default=None, help="folder of recordings to serve "
                   "(default: the ones shipped in streaming/sim/data)")
    p.add_argument("--urls-file", type=Path, default=None, help="write the URLs (and credentials) as JSON here")
    p.add_argument("--start", type=parse_start, default=None, metavar="TIME",
                   help="simulated clock at start: an ISO-8601 UTC time or epoch milliseconds (default: now)")
    p.set_defaults(func=run)


def parse_start(text: str) -> int:
    """--start: epoch milliseconds, or an ISO-8601 time (UTC unless it names its offset)."""
    if text.isdigit():
        return int(text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is neither epoch milliseconds nor an ISO-8601 time "
                                         "such as 2026-08-09T21:05:48Z") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def _config(args: argparse.Namespace):
    from streaming.sim import SimConfig, SimConfigError
    from streaming.sim.config import default_recordings_dir

    if args.recordings is not None and not args.recordings.is_dir():
        raise UsageError(f"--recordings {args.recordings} is not a folder")
    ports = {"coinbase": args.coinbase_port, "binance": args.binance_port, "binance_us": args.binance_us_port}
    for name, port in ports.items():
        if not 0 <= port <= 65535:
            raise UsageError(f"--{name.replace('_', '-')}-port must be in 0..65535, got {port}")
    try:
        return SimConfig(symbols=args.symbols, seed=args.seed, speed=args.speed, update_interval=args.update_interval,
                         gap_probability=args.gap_probability, host=args.host, ports=ports, start_ms=args.start,
                         recordings=args.recordings or default_recordings_dir())
    except SimConfigError as exc:
        raise UsageError(str(exc)) from None


async def _serve(config, urls_file: Path | None) -> None:
    from streaming.sim import ExchangeSimulator

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ExchangeSimulator(config) as sim:
        urls = {ex: u.as_dict() for ex, u in sim.urls.items()}
        for ex, u in urls.items():
            print(f"{ex:<11} ws {u['ws_url']:<28} rest {u['rest_url']}", flush=True)
        if urls_file is not None:
            # credentials go to the file only (0600), never to the terminal or logs
            creds = {ex: dict(zip(("api_key", "api_secret"), sim.credentials(ex), strict=True)) for ex in urls}
            urls_file.parent.mkdir(parents=True, exist_ok=True)
            urls_file.touch(mode=0o600)
            # the simulator's clock, so `livermore up --offline` can hand it to the worker (streaming.clock)
            start_ms, real_start_ms, speed = sim.clock_reading()
            clock = {"start_ms": start_ms, "real_start_ms": real_start_ms, "speed": speed}
            urls_file.write_text(json.dumps({**urls, "credentials": creds, "clock": clock}, indent=2))
        print(f"control: POST {urls['coinbase']['rest_url']}/_sim/fault   (Ctrl-C to stop)", flush=True)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        asyncio.run(_serve(config, args.urls_file))
    except OSError as exc:
        raise UsageError(f"cannot start the simulator: {exc}") from None
    return 0
