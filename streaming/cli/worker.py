"""`livermore worker | start | stop | reload-symbols | workers`: the worker and its control plane."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from streaming.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    w = subparsers.add_parser("worker", help="run the streaming worker (idle until a start command)")
    w.add_argument("--autostart", action="append", default=[], metavar="EXCHANGE",
                   help="start this exchange at once (repeatable)")
    w.add_argument("--user", metavar="ID", help="run unattended as this system user (default $LIVERMORE_SYSTEM_USER)")
    w.add_argument("--symbols", action="append", default=[], metavar="[EXCHANGE=]A,B",
                   help="serve exactly these symbols instead of the Dagster universe (repeatable)")
    w.add_argument("--shard", metavar="K/N", help="serve shard K of N of every universe (stable hash)")
    w.add_argument("--worker-id", metavar="ID", help="default host:pid")
    w.add_argument("--no-warmup", action="store_true", help="skip the REST backfill before going live")
    w.add_argument("--connect-timeout", type=float, default=60.0, metavar="S",
                   help="seconds a start waits for the connection before failing (default 60)")
    w.set_defaults(func=_worker)

    s = subparsers.add_parser("start", help="tell the worker(s) to connect an exchange")
    s.add_argument("exchange")
    _common(s)
    s.add_argument("--wait", dest="wait", action="store_true", default=True,
                   help="wait until connected (default)")
    s.add_argument("--no-wait", dest="wait", action="store_false", help="return once the command is queued")
    s.add_argument("--symbols", metavar="A,B", help="serve exactly these symbols (default: the universe)")
    s.add_argument("--spawn", action="store_true", help="start a detached worker first if none is running")
    s.set_defaults(func=_send, verb="start")

    st = subparsers.add_parser("stop", help="tell the worker(s) to disconnect an exchange (all without one)")
    st.add_argument("exchange", nargs="?")
    _common(st)
    st.set_defaults(func=_send, verb="stop", wait=True)

    r = subparsers.add_parser("reload-symbols", help="re-read the universe of a running exchange, no reconnect")
    r.add_argument("exchange")
    _common(r)
    r.set_defaults(func=_send, verb="reload-symbols", wait=True)

    ws = subparsers.add_parser("workers", help="live workers and the state of their exchanges")
    ws.add_argument("--json", action="store_true")
    ws.set_defaults(func=_workers)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait for the answer")
    p.add_argument("--target", default="*", help="'*' (every worker), a worker id, or shard:K/N")
    p.add_argument("--json", action="store_true", help="print the full answer as JSON")


def _worker(args: argparse.Namespace) -> int:
    from streaming.worker.config import build_config
    from streaming.worker.main import run_worker

    config = build_config(worker_id=args.worker_id, autostart=args.autostart, user=args.user,
                          symbols=args.symbols, shard=args.shard, warm_up=not args.no_warmup,
                          connect_timeout_s=args.connect_timeout)
    if config.autostart:  # well-formed (build_config checked); now: does the exchange exist?
        from streaming.settings import load_settings

        _check_exchanges(load_settings(), None, list(config.autostart))
    return run_worker(config)


def _check_exchanges(settings: Any, redis: Any, names: list[str]) -> None:
    """Unknown exchange names are a usage error up front (when any source knows the names)."""
    from streaming.db.engine import make_engine
    from streaming.exchange_ids import from_database, from_redis

    engine = make_engine(settings.database_url)
    try:
        known = from_database(engine)
    finally:
        engine.dispose()
    if not known and redis is not None:
        known = from_redis(redis)
    unknown = [n for n in names if n not in known]
    if known and unknown:
        raise UsageError(f"unknown exchange {unknown[0]!r}; known exchanges: {', '.join(sorted(known))}")


def _client() -> tuple[Any, Any]:
    from streaming.settings import load_settings, redis_client

    settings = load_settings()
    return settings, redis_client(settings)


def _send(args: argparse.Namespace) -> int:
    from streaming.control.client import ControlClient
    from streaming.control.commands import CommandError
    from streaming.control.spawn import ensure_worker_running

    if args.timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
    settings, redis = _client()
    try:
        if args.exchange:
            _check_exchanges(settings, redis, [args.exchange])
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
        print(_summary(args.verb, args.exchange, answer))
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

    _settings, redis = _client()
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
    for col in ("worker", "pid", "shard", "user", "started", "heartbeat age", "exchanges"):
        table.add_column(col)
    for w in workers:
        exchanges = ", ".join(f"{n}={s}" for n, s in sorted((w.get("exchanges") or {}).items())) or "idle"
        table.add_row(str(w["worker_id"]), str(w.get("pid")), w.get("shard") or "all", str(w.get("user") or "-"),
                      str(w.get("started_at")), f"{w.get('age_s', 0):.1f}s", exchanges)
    Console(width=140).print(table)
    return 0
