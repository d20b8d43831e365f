"""`livermore up` and `livermore down`."""

from __future__ import annotations

import argparse

from streaming.cli.exchange_sim import parse_start
from streaming.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    up = subparsers.add_parser("up", help="start the whole platform: Redis, database, Dagster on 127.0.0.1, worker")
    up.add_argument("--port", type=int, default=3000, help="Dagster webserver port (default 3000)")
    up.add_argument("--offline", action="store_true",
                    help="point every exchange at the local exchange simulator (no internet needed)")
    up.add_argument("--no-worker", action="store_true", help="do not start the streaming worker")
    up.add_argument("--sim-speed", type=float, default=1.0,
                    help="with --offline: simulated clock speed-up (60 = a 5m candle every 5 s)")
    up.add_argument("--sim-symbols", type=int, default=5, help="with --offline: synthetic symbols per exchange")
    up.add_argument("--sim-start", type=parse_start, default=None, metavar="TIME",
                    help="with --offline: simulated clock at start, ISO-8601 UTC or epoch ms (default: now)")
    up.set_defaults(func=_up)
    down = subparsers.add_parser("down", help="stop the embedded Redis server of this LIVERMORE_HOME")
    down.set_defaults(func=_down)


def _up(args: argparse.Namespace) -> int:
    from streaming.platform import Platform

    settings = load_settings()
    platform = Platform(settings, port=args.port, offline=args.offline, with_worker=not args.no_worker,
                        sim_args=["--speed", str(args.sim_speed), "--symbols", str(args.sim_symbols),
                                  *(["--start", str(args.sim_start)] if args.sim_start is not None else [])])
    try:
        platform.start()
        platform.wait_ready()
    except BaseException:
        platform.stop()
        raise
    print(f"Livermore is up: Dagster UI at http://127.0.0.1:{args.port}  (home {settings.home}; "
          f"logs in {settings.home / 'logs'}; Ctrl-C stops everything)", flush=True)
    return platform.supervise()


def _down(_args: argparse.Namespace) -> int:
    from streaming.redis_server import stop_embedded_redis

    settings = load_settings()
    if stop_embedded_redis(settings.home):
        print(f"stopped the embedded Redis server of {settings.home}")
    else:
        print(f"no embedded Redis server was running for {settings.home}")
    return 0
