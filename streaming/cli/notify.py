"""`livermore notify`: run the alert delivery service, or manage its destinations and subscriptions.

    livermore notify                          run the service (until Ctrl-C / SIGTERM)
    livermore notify add NAME URL [filters]   a destination and its first subscription
    livermore notify add NAME [filters]       one more subscription for NAME
    livermore notify list | remove | test | status
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
import time
from typing import Any

from streaming.cli._common import CommandFormatter, settings_for
from streaming.errors import UsageError, shown
from streaming.timeframes import TIMEFRAMES

WIDTH = 80


def _split(values: list[str] | None) -> list[str]:
    """Repeatable options that also take comma-separated lists: --symbol A,B --symbol C."""
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _number(text: str | None, option: str, minimum: float, integer: bool = False) -> Any:
    if text is None:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        value = None
    if value is None or value < minimum or value != value:
        kind = "a whole number" if integer else "a number"
        raise UsageError(f"{option} must be {kind} >= {minimum:g}, got {shown(text)}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("notify", help="deliver alerts: webhooks, Discord, Telegram, Slack, e-mail",
                              formatter_class=CommandFormatter,
                              description="Without a subcommand: run the alert delivery service.")
    p.add_argument("--consumer", metavar="NAME",
                   help="consumer name in the Redis group (default host:pid; a fixed name resumes its own "
                        "pending alerts at once after a restart)")
    p.add_argument("--lease-s", metavar="S", default="30", help="seconds a send may take before another "
                   "process may retry it (default 30)")
    p.add_argument("--claim-idle-s", metavar="S", default="60",
                   help="take over alerts idle this long on a stopped consumer (default 60)")
    p.add_argument("--max-attempts", metavar="N", default="5",
                   help="failed attempts before an alert is dead-lettered (default 5)")
    p.add_argument("--backoff-s", metavar="S", default="1",
                   help="first retry delay; doubles per failure up to 60 s, with jitter (default 1)")
    p.add_argument("--reload-s", metavar="S", default="30",
                   help="re-read destinations and subscriptions this often (default 30)")
    p.set_defaults(func=run_service)
    # optional: without one the service runs, so the usage line must not show it as required
    sub = p.add_subparsers(dest="notify_command", metavar="[SUBCOMMAND]")

    add = sub.add_parser("add", help="add a destination (NAME URL) or a subscription to one (NAME)",
                         description="NAME URL: a new destination and its first subscription. NAME alone: "
                                     "another subscription for it. No filter = every alert.")
    add.add_argument("name", help="destination name, e.g. trading-discord")
    add.add_argument("url", nargs="?", help="https://... (signed JSON webhook) or an Apprise URL; write secrets "
                     "as {ENV_VAR} (quote it: '...')")
    add.add_argument("--secret-env", metavar="VAR", help="webhooks: variable holding the HMAC signing secret")
    add.add_argument("--rate", metavar="N/Ss", help="at most N messages per S seconds, e.g. 5/2s "
                     "(default: the service's documented limit; webhooks unlimited)")
    add.add_argument("--no-chart", action="store_true", help="never attach the MACD-V chart")
    add.add_argument("--exchange", metavar="NAME", help="only this exchange (default: all)")
    add.add_argument("--symbol", action="append", metavar="S", help="only these symbols (repeatable, A,B)")
    add.add_argument("--tier", action="append", metavar="1|2",
                     help="only Tier 1 (top volume) or Tier 2 (held) symbols (repeatable)")
    add.add_argument("--timeframe", action="append", metavar="TF", help=f"only these ({', '.join(TIMEFRAMES)})")
    add.add_argument("--type", action="append", metavar="T", help="only level or reversal alerts (repeatable)")
    add.add_argument("--min-level", metavar="L", help="level alerts only at |level| >= L, e.g. 200")
    add.set_defaults(func=run_add)

    ls = sub.add_parser("list", help="destinations and their subscriptions")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_list)

    rm = sub.add_parser("remove", help="remove a destination, or one of its subscriptions")
    rm.add_argument("name", help="destination name")
    rm.add_argument("--subscription", metavar="ID", help="remove only this subscription (ids: notify list)")
    rm.set_defaults(func=run_remove)

    test = sub.add_parser("test", help="send a sample alert (with a sample chart) to a destination now")
    test.add_argument("name", help="destination name")
    test.set_defaults(func=run_test)

    st = sub.add_parser("status", help="per destination: sent, failed, dead, queued, last error")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(func=run_status)


# --- database commands -----------------------------------------------------------------------

def _engine(args: argparse.Namespace):
    from streaming.db.engine import check_connection, make_engine
    engine = make_engine(settings_for(args).database_url.get_secret_value())
    check_connection(engine)
    return engine


def _refused(exc: ValueError) -> UsageError:
    return UsageError(str(exc))


def run_add(args: argparse.Namespace) -> int:
    from streaming.notify import store
    from streaming.notify.destinations import InvalidDestination, parse_rate
    from streaming.notify.subscriptions import InvalidSubscription

    tiers = [int(_number(t, "--tier", 1, integer=True)) for t in _split(args.tier)]
    filters = {"symbols": _split(args.symbol), "tiers": tiers, "timeframes": _split(args.timeframe),
               "types": _split(args.type), "min_level": _number(args.min_level, "--min-level", 0)}
    if args.url is None and (args.secret_env or args.rate or args.no_chart):
        raise UsageError("--secret-env, --rate and --no-chart belong to a new destination: give its URL too")
    engine = _engine(args)
    try:
        with engine.begin() as conn:  # one transaction: a refused subscription leaves no destination
            if args.url is not None:
                rate = parse_rate(args.rate) if args.rate else None
                dest = store.add_destination(conn, args.name, args.url, os.environ, args.secret_env, rate,
                                             charts=not args.no_chart)
            else:
                dest = store.get_destination(conn, args.name)
            sub = store.add_subscription(conn, dest, args.exchange, **filters)
    except (InvalidDestination, InvalidSubscription) as exc:
        raise _refused(exc) from None
    finally:
        engine.dispose()
    what = f"destination {dest.name} ({dest.kind}) with subscription" if args.url else \
        f"subscription for {dest.name}:"
    print(f"added {what} #{sub.id}")
    return 0


def _listing(engine) -> tuple[list, list, dict[int, str]]:
    from streaming.db.queries import list_exchanges
    from streaming.notify import store

    with engine.connect() as conn:
        names = {int(r["id"]): r["name"] for r in list_exchanges(conn)}
        return store.list_destinations(conn), store.list_subscriptions(conn), names


def _dest_json(d, subs, names) -> dict[str, Any]:
    from streaming.notify.subscriptions import describe

    limit = d.rate_limit()
    return {"id": d.id, "name": d.name, "kind": d.kind, "url": d.display_url(), "variables": d.variables(),
            "rate": str(limit) if limit else None, "rate_is_default": d.rate is None, "charts": d.charts,
            "subscriptions": [{"id": s.id, "filters": describe(s, names)} for s in subs if s.destination_id == d.id]}


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def run_list(args: argparse.Namespace) -> int:
    engine = _engine(args)
    try:
        dests, subs, names = _listing(engine)
    finally:
        engine.dispose()
    rows = [_dest_json(d, subs, names) for d in dests]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no destinations; add one with: livermore notify add NAME URL")
    for r in rows:
        print(_short(f"{r['name']}  {r['kind']}  {r['url']}", WIDTH))
        rate = f"rate {r['rate'] or 'unlimited'}{' (default)' if r['rate_is_default'] else ''}"
        print(_short(f"  {rate}, charts {'on' if r['charts'] else 'off'}", WIDTH))
        for s in r["subscriptions"]:
            print(_short(f"  #{s['id']}  {s['filters']}", WIDTH))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from streaming.notify import store
    from streaming.notify.destinations import InvalidDestination
    from streaming.notify.subscriptions import InvalidSubscription

    sub_id = _number(args.subscription, "--subscription", 1, integer=True)
    engine = _engine(args)
    try:
        with engine.begin() as conn:
            if sub_id is None:
                store.remove_destination(conn, args.name)
            else:
                store.remove_subscription(conn, args.name, sub_id)
    except (InvalidDestination, InvalidSubscription) as exc:
        raise _refused(exc) from None
    finally:
        engine.dispose()
    print(f"removed {args.name}" if sub_id is None else f"removed subscription #{sub_id} of {args.name}")
    return 0


def run_test(args: argparse.Namespace) -> int:
    import asyncio

    from streaming.notify import store
    from streaming.notify.destinations import InvalidDestination

    engine = _engine(args)
    try:
        with engine.connect() as conn:
            dest = store.get_destination(conn, args.name)
    except InvalidDestination as exc:
        raise _refused(exc) from None
    finally:
        engine.dispose()
    ok, seconds, error = asyncio.run(_send_test(dest))
    if not ok:
        print(f"livermore: test alert to {dest.name} failed: {error}", file=sys.stderr, flush=True)
        return 1
    print(f"sent a test alert to {dest.name} ({dest.kind}) in {seconds:.2f} s")
    return 0


async def _send_test(dest) -> tuple[bool, float, str]:
    from streaming.notify import envref
    from streaming.notify.chart import chart_data, render_png
    from streaming.notify.sample import sample_alert, sample_candles
    from streaming.notify.sending import build_sender

    try:
        sender = build_sender(dest, os.environ, envref.Redactor(), time.time)
    except (envref.MissingVariable, ValueError) as exc:
        raise UsageError(f"{exc}; export it in this shell to test {dest.name}") from None
    alert = sample_alert()
    try:
        chart = render_png(chart_data(sample_candles()), f"{alert.symbol} {alert.timeframe} (test)") \
            if sender.wants_chart else None
        t0 = time.monotonic()
        result = await sender.send([alert], False, chart)
        return result.ok, time.monotonic() - t0, result.error
    finally:
        await sender.aclose()


def run_status(args: argparse.Namespace) -> int:
    from streaming.notify.ledger import live_consumers, read_status
    from streaming.redis_clients import sync_client
    from streaming.settings import resolve_redis_url

    engine = _engine(args)
    try:
        dests, _, _ = _listing(engine)
    finally:
        engine.dispose()
    client = sync_client(resolve_redis_url(settings_for(args)))
    try:
        status = read_status(client, [d.id for d in dests])
        consumers = live_consumers(client)
    finally:
        client.close()
    rows = [{"name": d.name, "kind": d.kind, **status[d.id]} for d in dests]
    if args.json:
        print(json.dumps({"destinations": rows, "consumers": consumers}, indent=2))
        return 0
    # 20 + 7 + 8 + 7 + 6 + 7 + 2 + a 20-character time = 77 columns
    print(f"{'destination':<20}{'sent':>7}{'digests':>8}{'failed':>7}{'dead':>6}{'queued':>7}  last sent")
    for r in rows:
        when = (r["last_sent_at"] or "-").replace("+00:00", "Z")[:20]
        print(f"{_short(r['name'], 19):<20}{r['sent']:>7}{r['digests']:>8}{r['failed']:>7}{r['dead']:>6}"
              f"{r['queued']:>7}  {when}")
    for r in rows:
        if r["last_error"]:
            line = f"{r['name']}: last error at {r['last_error_at']}: {r['last_error']}"
            print(textwrap.fill(line, WIDTH, subsequent_indent="    "))
    names = ", ".join(c["consumer"] for c in consumers) or "none (start one with: livermore notify)"
    print(textwrap.fill(f"running: {names}", WIDTH, subsequent_indent="    "))
    return 0


# --- the service -----------------------------------------------------------------------------

def run_service(args: argparse.Namespace) -> int:
    import asyncio

    from streaming.db.engine import check_connection, make_engine
    from streaming.notify import store
    from streaming.notify.outbox import RetryPolicy
    from streaming.notify.service import ServiceConfig, default_consumer
    from streaming.settings import resolve_redis_url

    numbers = {name: _number(getattr(args, name.replace("-", "_")), f"--{name}", 0.1)
               for name in ("lease-s", "claim-idle-s", "backoff-s", "reload-s")}
    attempts = _number(args.max_attempts, "--max-attempts", 1, integer=True)
    backoff = numbers["backoff-s"]
    config = ServiceConfig(consumer=args.consumer or default_consumer(), lease_s=numbers["lease-s"],
                           claim_idle_s=numbers["claim-idle-s"], reload_s=numbers["reload-s"],
                           retry=RetryPolicy(attempts, backoff, max(60.0, backoff)))
    settings = settings_for(args)
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        check_connection(engine)
        with engine.connect() as conn:
            store.list_destinations(conn)  # the schema is there (or a one-line UsageError)
        url = resolve_redis_url(settings)
        asyncio.run(_serve(url, engine, config))
    finally:
        engine.dispose()
    return 0


async def _serve(url: str, engine, config) -> None:
    import asyncio

    from streaming.notify.service import NotifyService
    from streaming.redis_clients import async_client

    r = async_client(url, decode=False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await NotifyService(r, engine, config).run(stop)
    finally:
        await r.aclose()
