"""`livermore worker | start | stop | reload-symbols | workers`: the worker and its control plane."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from streaming.cli._common import TERMINAL_WIDTH, add_command, check_exchanges, seconds, settings_for, target
from streaming.errors import UsageError, printable


def register(subparsers: argparse._SubParsersAction) -> None:
    w = add_command(subparsers, "worker", "run the streaming worker (idle until a start command)",
                    "It holds the exchange WebSockets, keeps candles in Redis and publishes close events and "
                    "alerts; Ctrl-C or SIGTERM stops it.")
    w.add_argument("--autostart", action="append", default=[], metavar="EXCHANGE",
                   help="start this exchange at once (repeatable)")
    w.add_argument("--user", metavar="ID", help="run unattended as this system user (default $LIVERMORE_SYSTEM_USER)")
    w.add_argument("--symbols", action="append", default=[], metavar="[EXCHANGE=]A,B",
                   help="serve exactly these symbols instead of the Dagster universe (repeatable)")
    w.add_argument("--shard", metavar="K/N", help="serve shard K of N of every universe (stable hash)")
    w.add_argument("--worker-id", metavar="ID", help="the worker's name in heartbeats and answers (default host:pid)")
    w.add_argument("--no-warmup", action="store_true", help="skip the REST backfill before going live")
    w.add_argument("--connect-timeout", type=seconds, default=60.0, metavar="S",
                   help="seconds a start waits for the connection before failing (default 60)")
    w.set_defaults(func=_worker)

    s = add_command(subparsers, "start", "tell the worker(s) to connect an exchange",
                    "Waits until the exchange is connected (after the REST warm-up) unless --no-wait.")
    s.add_argument("exchange", metavar="EXCHANGE", help="exchange name: coinbase, binance or binance_us")
    _common(s)
    s.add_argument("--wait", dest="wait", action="store_true", default=True,
                   help="wait until connected (default)")
    s.add_argument("--no-wait", dest="wait", action="store_false", help="return once the command is queued")
    s.add_argument("--symbols", metavar="A,B", help="serve exactly these symbols (default: the universe)")
    s.add_argument("--spawn", action="store_true", help="start a detached worker first if none is running")
    s.set_defaults(func=_send, verb="start")

    st = add_command(subparsers, "stop", "tell the worker(s) to disconnect an exchange (or all)")
    st.add_argument("exchange", metavar="EXCHANGE", nargs="?", help="exchange name (default: every exchange)")
    _common(st)
    st.set_defaults(func=_send, verb="stop", wait=True)

    r = add_command(subparsers, "reload-symbols", "re-read the universe of a running exchange, no reconnect")
    r.add_argument("exchange", metavar="EXCHANGE", help="exchange name: coinbase, binance or binance_us")
    _common(r)
    r.set_defaults(func=_send, verb="reload-symbols", wait=True)

    ws = add_command(subparsers, "workers", "list live workers and the state of their exchanges")
    ws.add_argument("--json", action="store_true", help="machine-readable output")
    ws.set_defaults(func=_workers)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=seconds, default=30.0, metavar="S",
                   help="seconds to wait for the answer (default 30)")
    p.add_argument("--target", type=target, default="*", metavar="T",
                   help="'*' (every worker, the default), a worker id, or shard:K/N")
    p.add_argument("--json", action="store_true", help="print the full answer as JSON")


def _worker(args: argparse.Namespace) -> int:
    from streaming.worker.config import ALL_EXCHANGES, build_config
    from streaming.worker.main import run_worker

    settings = settings_for(args)
    config = build_config(settings=settings, worker_id=args.worker_id, autostart=args.autostart, user=args.user,
                          symbols=args.symbols, shard=args.shard, warm_up=not args.no_warmup,
                          connect_timeout_s=args.connect_timeout)
    named = [*config.autostart, *(name for name in config.symbols if name != ALL_EXCHANGES)]
    if named:  # well-formed (build_config checked); now: do these exchanges exist?
        check_exchanges(settings, None, named)
    return run_worker(config, settings)


def _send(args: argparse.Namespace) -> int:
    from streaming.control.client import ControlClient
    from streaming.control.commands import CommandError
    from streaming.control.spawn import ensure_worker_running
    from streaming.settings import redis_client

    settings = settings_for(args)
    if args.exchange:  # before Redis: a typo is reported at once, even on a home not set up yet
        check_exchanges(settings, None, [args.exchange])
    redis = redis_client(settings)
    try:
        if getattr(args, "spawn", False):
            spawned = ensure_worker_running(settings, redis)
            if spawned["spawned"]:
                print(f"started worker {spawned['worker_id']} (pid {spawned['pid']})", file=sys.stderr)
        symbols = args.symbols.split(",") if getattr(args, "symbols", None) else None
        try:
            answer = ControlClient(redis).send(args.verb, exchange=args.exchange, timeout=args.timeout,
                                               symbols=symbols, target=args.target, wait=args.wait)
        except CommandError as exc:
            raise UsageError(exc.reason) from None
    finally:
        redis.close()
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
    else:
        print(printable(_summary(args.verb, args.exchange, answer)))
    return 0 if answer["status"] in ("success", "sent") else 1


def _summary(verb: str, exchange: str | None, answer: dict[str, Any]) -> str:
    what = f"{verb} {exchange or 'all'}"
    if answer["status"] == "sent":
        return f"{what}: queued as {answer['result']['command_id']}"
    if answer["status"] != "success":
        return f"{what}: error: {answer.get('reason')}"
    result = answer.get("result") or {}
    if verb == "start":
        return f"{what}: connected, {result.get('symbols', '?')} symbols" + (
            f" ({result['note']})" if result.get("note") else "")
    if verb == "reload-symbols":
        return (f"{what}: +{len(result.get('added', []))} -{len(result.get('removed', []))} symbols, "
                f"{result.get('symbols', '?')} served")
    return f"{what}: ok"


def _workers(args: argparse.Namespace) -> int:
    from streaming.control.heartbeat import live_workers
    from streaming.settings import redis_client

    redis = redis_client(settings_for(args))
    try:
        workers = live_workers(redis)
    finally:
        redis.close()
    if args.json:
        print(json.dumps({"workers": workers}, indent=2))
        return 0
    if not workers:
        print("no live worker (start one with `livermore worker`)")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Livermore workers")
    for col in ("worker", "pid", "shard", "user", "heartbeat", "exchanges"):
        table.add_column(col, overflow="fold")
    for w in workers:
        exchanges = ", ".join(f"{n}={s}" for n, s in sorted((w.get("exchanges") or {}).items())) or "idle"
        table.add_row(printable(str(w["worker_id"])), str(w.get("pid")), w.get("shard") or "all",
                      str(w.get("user") or "-"), f"{w.get('age_s', 0):.1f}s ago", printable(exchanges))
    Console(width=TERMINAL_WIDTH).print(table)
    return 0
