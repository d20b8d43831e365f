"""`livermore exchange-sim`: the local exchange simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
from datetime import UTC, datetime
from pathlib import Path

from streaming.cli._common import add_command, count, number, port_or_any
from streaming.errors import UsageError, shown


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "exchange-sim", "serve simulated Coinbase/Binance/Binance.US on 127.0.0.1",
                    "Recorded and synthetic markets speaking each exchange's protocols, until Ctrl-C or SIGTERM.")
    p.add_argument("--host", default="127.0.0.1",
                   help="loopback address to bind (default 127.0.0.1; others need --allow-remote)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other machines can reach (the simulator has no authentication)")
    p.add_argument("--coinbase-port", type=port_or_any, default=0, metavar="PORT",
                   help="Coinbase WebSocket and REST port (default 0 = any free port)")
    p.add_argument("--binance-port", type=port_or_any, default=0, metavar="PORT",
                   help="Binance port (default 0 = any free port)")
    p.add_argument("--binance-us-port", type=port_or_any, default=0, metavar="PORT",
                   help="Binance.US port (default 0 = any free port)")
    p.add_argument("--symbols", type=count(0, 500), default=3, metavar="N",
                   help="synthetic symbols per exchange (SIM1-USD, SIM1USDT...; default 3)")
    p.add_argument("--seed", type=count(0, 2**31), default=1, metavar="N",
                   help="seed of the synthetic markets: the same seed gives the same prices (default 1)")
    p.add_argument("--speed", type=number(0, 10_000, low_open=True), default=1.0, metavar="X",
                   help="simulated seconds per real second (default 1)")
    p.add_argument("--update-interval", type=number(0.001, 60), default=0.5, metavar="S",
                   help="real seconds between candle updates, 0.001 to 60 (default 0.5)")
    p.add_argument("--gap-probability", type=number(0, 1, high_open=True), default=0.0, metavar="P",
                   help="chance a 5m bucket has no trade, from 0 to below 1 (default 0)")
    p.add_argument("--recordings", type=Path, default=None, help="folder of recordings to serve "
                   "(default: the ones shipped in streaming/sim/data)")
    p.add_argument("--urls-file", type=Path, default=None, help="write the URLs (and credentials) as JSON here")
    p.add_argument("--start", type=parse_start, default=None, metavar="TIME",
                   help="simulated clock at start: an ISO-8601 UTC time or epoch milliseconds (default: now)")
    p.set_defaults(func=run)


MAX_START_MS = 7_258_118_400_000  # 2200-01-01


def parse_start(text: str) -> int:
    """--start: epoch milliseconds, or an ISO-8601 time (UTC unless it names its offset)."""
    try:
        if text.isdigit():
            ms = int(text) if len(text) <= 15 else -1
        else:
            at = datetime.fromisoformat(text)
            ms = int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{shown(text, 40)} is neither epoch milliseconds nor an ISO-8601 time "
                                         "such as 2026-08-09T21:05:48Z") from None
    if not 0 <= ms <= MAX_START_MS:
        raise argparse.ArgumentTypeError(f"{shown(text, 40)} is not a time between 1970 and 2200")
    return ms


def _config(args: argparse.Namespace):
    from streaming.sim import SimConfig, SimConfigError
    from streaming.sim.config import default_recordings_dir

    if args.recordings is not None and not args.recordings.is_dir():
        raise UsageError(f"--recordings {shown(args.recordings)} is not a folder")
    if not args.allow_remote and not _loopback(args.host):
        raise UsageError(f"--host {shown(args.host)} is not a loopback address: other machines could reach the "
                         "simulator, which has no authentication; use 127.0.0.1, or add --allow-remote")
    ports = {"coinbase": args.coinbase_port, "binance": args.binance_port, "binance_us": args.binance_us_port}
    try:
        return SimConfig(symbols=args.symbols, seed=args.seed, speed=args.speed, update_interval=args.update_interval,
                         gap_probability=args.gap_probability, host=args.host, ports=ports, start_ms=args.start,
                         recordings=args.recordings or default_recordings_dir())
    except SimConfigError as exc:
        raise UsageError(str(exc)) from None


def _loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or a name that resolves only to those ('' and 0.0.0.0 bind every interface)."""
    import ipaddress
    import socket

    if not host.strip():
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


async def _serve(config, urls_file: Path | None) -> None:
    import asyncio

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
            urls_file.chmod(0o600)  # a file that was there keeps its mode through touch: not with credentials
            # the simulator's clock, so `livermore up --offline` can hand it to the worker (streaming.clock)
            start_ms, real_start_ms, speed = sim.clock_reading()
            clock = {"start_ms": start_ms, "real_start_ms": real_start_ms, "speed": speed}
            urls_file.write_text(json.dumps({**urls, "credentials": creds, "clock": clock}, indent=2))
        print(f"control: POST {urls['coinbase']['rest_url']}/_sim/fault   (Ctrl-C to stop)", flush=True)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    import asyncio
    config = _config(args)
    try:
        asyncio.run(_serve(config, args.urls_file))
    except OSError as exc:
        raise UsageError(f"cannot start the simulator: {exc}") from None
    return 0
