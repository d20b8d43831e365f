"""`livermore worker | start | stop | reload-symbols | workers`: the worker and its control plane."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from streaming.cli._common import add_command, check_exchanges, seconds, settings_for, target
from streaming.cli._present import fit, symbols_words, worker_lines
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
    w.add_argument("--no-warmup", action="store_true", help="skip the REST history (warm-up) before going live")
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


NO_WORKER = "no worker is running; start one with `livermore worker` (or pass --spawn)"


def _send(args: argparse.Namespace) -> int:
    from streaming.cli._progress import WarmUpDisplay
    from streaming.control.client import ControlClient
    from streaming.control.commands import CommandError, is_for, make_command
    from streaming.control.heartbeat import live_workers
    from streaming.control.spawn import ensure_worker_running
    from streaming.settings import redis_client

    settings = settings_for(args)
    if args.exchange:  # before Redis: a typo is reported at once, even on a home not set up yet
        check_exchanges(settings, None, [args.exchange])
    symbols = args.symbols.split(",") if getattr(args, "symbols", None) else None
    try:  # bad symbols or target: exit 2 with the reason, whether or not a worker runs
        make_command(args.verb, now_ms=0, exchange=args.exchange, symbols=symbols, target=args.target)
    except CommandError as exc:
        raise UsageError(exc.reason) from None
    redis = redis_client(settings)
    display = WarmUpDisplay(args.exchange) if args.verb == "start" and args.wait and args.exchange else None
    try:
        if getattr(args, "spawn", False):
            spawned = ensure_worker_running(settings, redis)
            if spawned["spawned"]:
                print(f"started worker {spawned['worker_id']} (pid {spawned['pid']})", file=sys.stderr)
        elif not any(is_for(args.target, w["worker_id"], w.get("shard")) for w in live_workers(redis)):
            if args.wait and args.verb == "stop":  # what was asked for holds already
                return _answer(args, {"status": "success", "reason": None, "responses": [],
                                      "result": {"note": "no worker is running, so nothing streams"}})
            if args.wait:  # nobody would answer: say so now, queue nothing a later worker would run
                return _answer(args, {"status": "error", "reason": NO_WORKER, "result": {}, "responses": []})
            print(f"livermore: warning: {NO_WORKER}; the command stays queued for 60s", file=sys.stderr)
        try:
            answer = ControlClient(redis).send(args.verb, exchange=args.exchange, timeout=args.timeout,
                                               symbols=symbols, target=args.target, wait=args.wait,
                                               on_progress=display.update if display is not None else None)
        except CommandError as exc:
            raise UsageError(exc.reason) from None
    finally:
        if display is not None:
            display.close()
        redis.close()
    return _answer(args, answer)


def _answer(args: argparse.Namespace, answer: dict[str, Any]) -> int:
    """Print the answer; the exit code: 0 done, 1 an error, no answer, or no usable symbol."""
    if args.json:
        print(json.dumps(answer, indent=2, default=str))
    else:
        print("\n".join(summary(args.verb, args.exchange, answer)))
    if answer["status"] == "sent":
        return 0
    if answer["status"] != "success":
        return 1
    return 1 if args.verb == "start" and not _accepted(answer) and _refused(answer) else 0


def _results(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-worker results (one worker answers with its own result)."""
    result = answer.get("result") or {}
    workers = result.get("workers")
    return [r for r in workers.values() if isinstance(r, dict)] if isinstance(workers, dict) else [result]


def _accepted(answer: dict[str, Any]) -> list[str]:
    return sorted({s for r in _results(answer) for s in r.get("accepted") or []})


def _refused(answer: dict[str, Any]) -> dict[str, str]:
    return {s: str(why) for r in _results(answer) for s, why in (r.get("refused") or {}).items()}


def summary(verb: str, exchange: str | None, answer: dict[str, Any]) -> list[str]:
    """The answer in words, every line within 80 columns."""
    what = f"{verb} {exchange or 'all'}"
    if answer["status"] == "sent":
        return fit(f"{what}: queued as {answer['result']['command_id']}")
    if answer["status"] != "success":
        return fit(f"{what}: error: {printable(str(answer.get('reason')))}")
    result = answer.get("result") or {}
    if verb == "start":
        return _start_lines(what, answer)
    if verb == "reload-symbols":
        return fit(f"{what}: +{len(result.get('added', []))} -{len(result.get('removed', []))} symbols, "
                   f"{result.get('symbols', '?')} served")
    if verb == "stop":
        if result.get("note"):
            return fit(f"{what}: {result['note']}")
        stopped = result.get("stopped")
        if isinstance(stopped, list):
            return fit(f"{what}: stopped {', '.join(stopped)}" if stopped else f"{what}: nothing was running")
        return fit(f"{what}: stopped" if result.get("was_running") else f"{what}: was not running")
    return fit(f"{what}: ok")


def _start_lines(what: str, answer: dict[str, Any]) -> list[str]:
    results = _results(answer)
    accepted, refused = _accepted(answer), _refused(answer)
    served = sum(int(r.get("symbols") or 0) for r in results)
    states = sorted({str(r.get("state") or "?") for r in results})
    if any(r.get("already_running") for r in results):
        applied = [r["applied"] for r in results if isinstance(r.get("applied"), dict)]
        added = sorted({s for a in applied for s in a.get("added") or []})
        removed = sorted({s for a in applied for s in a.get("removed") or []})
        if applied and (added or removed):
            head = (f"{what}: already running ({'/'.join(states)}); applied the new symbols: "
                    f"+{len(added)} -{len(removed)}, now {served} symbols")
        elif applied:
            head = f"{what}: already running ({'/'.join(states)}) with these {served} symbols; nothing to change"
        else:
            head = f"{what}: already running ({'/'.join(states)}), {served} symbols"
    else:
        head = f"{what}: {'/'.join(states)}, streaming {len(accepted)} of {served} symbols"
    lines = fit(head)
    for r in results:
        if r.get("note"):
            lines += fit(str(r["note"]), "  ")
    if accepted and len(accepted) <= 20:
        lines += fit(f"accepted: {symbols_words(accepted, 20)}", "  ")
    for sym, why in sorted(refused.items())[:10]:
        lines += fit(f"refused: {printable(sym)}: {printable(why)}", "  ")
    if len(refused) > 10:
        lines += fit(f"refused: {len(refused) - 10} more (see --json)", "  ")
    if refused and not accepted:
        lines += fit("no symbol is usable: check the symbols' spelling on the exchange", "  ")
    warm = [r.get("warm_up") or {} for r in results]
    if any(w.get("streams_total") for w in warm):
        candles = sum(int(w.get("candles") or 0) for w in warm)
        streams = sum(int(w.get("streams_total") or 0) for w in warm)
        seconds = max(float(w.get("seconds") or 0) for w in warm)
        failed = sum(int(w.get("failed") or 0) for w in warm)
        lines += fit(f"warm-up: {streams} streams, {candles:,} candles written in {seconds:.1f}s"
                     + (f", {failed} streams failed" if failed else ""), "  ")
    return lines


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
    lines = [f"{len(workers)} live worker{'s' if len(workers) != 1 else ''}"]
    for w in workers:
        lines += worker_lines(w)
    print("\n".join(lines))
    return 0
