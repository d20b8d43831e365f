"""`livermore status`: the home, the exchanges with their connection state, the live workers."""

from __future__ import annotations

import argparse
import json
import textwrap
from typing import Any

from rich.console import Console
from rich.table import Table

from streaming.cli._common import TERMINAL_WIDTH, add_command, settings_for
from streaming.db.engine import check_connection, make_engine
from streaming.db.queries import list_exchanges
from streaming.errors import printable
from streaming.settings import LivermoreSettings, mask_url


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "status", "show the home, the exchanges' state and live workers",
                    "Live state comes from Redis when it runs, else from the database.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _running_redis_url(settings: LivermoreSettings) -> str | None:
    """The configured Redis, or the embedded one if it runs: status only looks, never starts it."""
    from streaming.redis_server import embedded_redis_url

    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    return embedded_redis_url(settings.home)


def _live(url: str | None, exchange_ids: list[int]) -> dict[str, Any] | None:
    """The worker's view in Redis (fresher than the database); None when Redis is not running."""
    import redis

    from streaming.control.status import live_status, read_status
    from streaming.redis_clients import sync_client

    if not url:
        return None
    client = sync_client(url, timeout=2.0, connect_timeout=1.0, retries=1)
    try:
        live = live_status(client)
        live["by_id"] = {i: read_status(client, i) for i in exchange_ids}
        return live
    except (redis.RedisError, OSError, ValueError):
        return None
    finally:
        client.close()


def run(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        check_connection(engine)
        with engine.connect() as conn:
            rows = list_exchanges(conn)
    finally:
        engine.dispose()
    redis_url = _running_redis_url(settings)
    live = _live(redis_url, [row["id"] for row in rows])
    by_id = (live or {}).get("by_id", {})
    exchanges = []
    for row in rows:
        state = by_id.get(row["id"], {})
        workers = ((live or {}).get("exchanges", {}).get(row["name"]) or {}).get("workers", [])
        exchanges.append({
            "id": row["id"],
            "name": row["name"],
            "display_name": row["display_name"],
            "active": bool(row["is_active"]),
            "connection_state": state.get("connection_state") or row["connection_state"] or "idle",
            "connected_at": state.get("connected_at") or _iso(row["connected_at"]),
            "last_heartbeat": state.get("last_heartbeat") or _iso(row["last_heartbeat"]),
            "last_error": state.get("last_error") or row["last_error"],
            "workers": workers,
        })
    workers = (live or {}).get("workers", [])
    if args.json:
        print(json.dumps({"home": str(settings.home), "exchanges": exchanges, "workers": workers,
                          "redis": live is not None, "redis_url": mask_url(redis_url) if redis_url else None},
                         indent=2, default=str))
        return 0
    _print_human(settings, redis_url, live is not None, exchanges, workers)
    return 0


def _print_human(settings: LivermoreSettings, redis_url: str | None, redis_up: bool,
                 exchanges: list[dict[str, Any]], workers: list[dict[str, Any]]) -> None:
    console = Console(width=TERMINAL_WIDTH, highlight=False)
    lines = [f"home: {settings.home}"]
    if redis_up and redis_url:
        lines.append(f"redis: {mask_url(redis_url)}" + (" (embedded)" if settings.embedded_redis else ""))
    else:
        lines.append("redis: not running (no live state; start the platform with `livermore up`)")
    for line in lines:
        console.print(_fit(line), markup=False)
    table = Table(title="Livermore exchanges")
    for col in ("exchange", "active", "state", "connected since", "last error"):
        table.add_column(col, overflow="fold")
    for r in exchanges:
        table.add_row(f"{r['name']}\n{r['display_name']}", "yes" if r["active"] else "no", r["connection_state"],
                      _short_time(r["connected_at"]), printable(str(r["last_error"] or "-"))[:160])
    console.print(table)
    if not workers:
        console.print("workers: none running" if redis_up else "workers: unknown (Redis is not running)")
    for w in workers:
        names = ", ".join(f"{n} {s}" for n, s in sorted((w.get("exchanges") or {}).items())) or "idle"
        line = (f"worker {printable(str(w.get('worker_id')))}: pid {w.get('pid')}, shard {w.get('shard') or 'all'}, "
                f"{names}, heartbeat {w.get('age_s', 0):.1f}s ago")
        console.print(_fit(line), markup=False)


def _fit(line: str) -> str:
    """The line wrapped at 80 columns; a path or URL is never cut (copy-pasting it must work)."""
    return textwrap.fill(line, TERMINAL_WIDTH, subsequent_indent="  ", break_on_hyphens=False,
                         break_long_words=False)


def _short_time(iso: str | None) -> str:
    """'2026-11-24 10:00:00' from an ISO timestamp (UTC as the worker writes it); '-' when unset."""
    if not iso:
        return "-"
    return str(iso).replace("T", " ")[:19]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
