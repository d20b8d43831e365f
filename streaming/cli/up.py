"""`livermore up`, `livermore down` and `livermore redis-url`."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from streaming.cli._common import add_command, count, number, port, port_or_any, settings_for
from streaming.cli.exchange_sim import parse_start
from streaming.errors import UsageError

if TYPE_CHECKING:
    from streaming.settings import LivermoreSettings

DEFAULT_METRICS_PORT = 9464  # the worker's /metrics under `up` unless told otherwise (docs/metrics.md)

log = logging.getLogger("livermore.up")


def register(subparsers: argparse._SubParsersAction) -> None:
    up = add_command(subparsers, "up", "start the whole platform: Redis, database, Dagster, worker",
                     "Everything listens on 127.0.0.1 only; Ctrl-C or SIGTERM stops everything it started. "
                     "One `up` per LIVERMORE_HOME; --offline has a home of its own.")
    up.add_argument("--port", type=port, default=3000, help="Dagster webserver port (default 3000)")
    up.add_argument("--offline", action="store_true",
                    help="point every exchange at the local exchange simulator (no internet needed); "
                         "state lives in $LIVERMORE_HOME/offline, apart from the online state")
    up.add_argument("--no-worker", action="store_true", help="do not start the streaming worker")
    up.add_argument("--metrics-port", type=port_or_any, default=None, metavar="PORT",
                    help=f"the worker's Prometheus /metrics on 127.0.0.1 (default LIVERMORE_METRICS_PORT, else "
                         f"{DEFAULT_METRICS_PORT}; 0: none)")
    up.add_argument("--no-notify", action="store_true",
                    help="do not start the alert delivery service (livermore notify)")
    up.add_argument("--sim-speed", type=number(0, 10_000, low_open=True), default=1.0, metavar="X",
                    help="with --offline: simulated clock speed-up (60 = a 5m candle every 5 s; default 1)")
    up.add_argument("--sim-symbols", type=count(0, 500), default=5, metavar="N",
                    help="with --offline: synthetic symbols per exchange (default 5)")
    up.add_argument("--sim-start", type=parse_start, default=None, metavar="TIME",
                    help="with --offline: simulated clock at start, ISO-8601 UTC or epoch ms (default: now)")
    up.set_defaults(func=_up)
    down = add_command(subparsers, "down", "stop the embedded Redis server of this LIVERMORE_HOME")
    down.set_defaults(func=_down)
    url = add_command(subparsers, "redis-url", "print the URL (with its password) of this home's Redis",
                      "For scripts: REDIS_URL=$(livermore redis-url). Starts the embedded server if it is "
                      "not running. The URL is a secret: do not log it.")
    url.add_argument("--masked", action="store_true", help="hide the password (for logs and screenshots)")
    url.set_defaults(func=_redis_url)


def _first_line(settings: LivermoreSettings, offline: bool) -> list[str]:
    if not offline:
        return [f"livermore up: home {settings.home}"]
    lines = [f"livermore up --offline: home {settings.home}, apart from the online state",
             "  (other commands reach it with `livermore --offline COMMAND`)"]
    if not settings.embedded_redis:
        lines.append("  note: LIVERMORE_REDIS_URL is set, so offline mode shares that Redis with online mode")
    return lines


def _metrics_port(args: argparse.Namespace, settings: LivermoreSettings) -> tuple[int | None, bool]:
    """The worker's /metrics port under `up` (None: none, also without a worker) and whether the
    user chose it: --metrics-port, else LIVERMORE_METRICS_PORT, else DEFAULT_METRICS_PORT; 0 is none."""
    if args.no_worker:
        return None, False
    if args.metrics_port is not None:
        return args.metrics_port or None, True
    if settings.metrics_port is not None:
        return settings.metrics_port or None, True
    return DEFAULT_METRICS_PORT, False


def _up(args: argparse.Namespace) -> int:
    from streaming.supervision import SignalGuard, StopRequested, UpLock

    guard = SignalGuard()
    guard.install()  # from here on a signal stops whatever has been started, nothing is left behind
    offline = args.offline or args.offline_home  # `livermore --offline up` is `livermore up --offline`
    try:
        from streaming.platform import Platform
        from streaming.redis_server import free_port, port_is_free

        settings = settings_for(args)
        for line in _first_line(settings, offline):
            print(line, flush=True)
        with UpLock(settings.home, args.port, offline):
            if not port_is_free(args.port):
                raise UsageError(f"port {args.port} is in use by another program; pass --port {free_port()} "
                                 "(or another free port)")
            metrics_port, chosen = _metrics_port(args, settings)
            if metrics_port and not port_is_free(metrics_port):
                if chosen:
                    raise UsageError(f"port {metrics_port} (the worker's /metrics) is in use by another program; "
                                     f"pass --metrics-port {free_port()} (or another free port), or 0 for none")
                metrics_port = free_port()  # the default is taken: any free port, printed below
            sim_args = ["--speed", str(args.sim_speed), "--symbols", str(args.sim_symbols),
                        *(["--start", str(args.sim_start)] if args.sim_start is not None else [])]
            platform = Platform(settings, port=args.port, offline=offline, with_worker=not args.no_worker,
                                with_notify=not args.no_notify, sim_args=sim_args, guard=guard,
                                metrics_port=metrics_port)
            try:
                platform.start()
                platform.wait_ready()
                print(f"Livermore is up: Dagster UI at http://127.0.0.1:{args.port}  (logs in "
                      f"{settings.home / 'logs'}; Ctrl-C stops everything)", flush=True)
                if metrics_port:
                    print(f"  worker metrics at http://127.0.0.1:{metrics_port}/metrics", flush=True)
                return platform.supervise()
            finally:
                platform.stop()
    except StopRequested as stop:
        log.info("stopped by %s", stop)
        return 0
    finally:
        sys.stdout.flush()


def _down(args: argparse.Namespace) -> int:
    from streaming.redis_server import RedisServerError, stop_embedded_redis

    settings = settings_for(args)
    try:
        stopped = stop_embedded_redis(settings.home)
    except RedisServerError as exc:
        raise UsageError(str(exc)) from None
    if stopped:
        print(f"stopped the embedded Redis server of {settings.home}")
    else:
        print(f"no embedded Redis server was running for {settings.home}")
    return 0


def _redis_url(args: argparse.Namespace) -> int:
    from streaming.settings import mask_url, resolve_redis_url

    url = resolve_redis_url(settings_for(args))
    print(mask_url(url) if args.masked else url)
    return 0

