"""`livermore status`: exchanges, their connection state, and the live workers if Redis is up."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from streaming.db.engine import check_connection, make_engine
from streaming.db.queries import list_exchanges
from streaming.settings import load_settings, mask_url


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="exchanges with their connection state, and running workers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _running_redis_url(settings) -> str | None:
    """The configured Redis, or the embedded one if it runs: status only looks, never starts it."""
    from streaming.redis_server import embedded_redis_url

    return settings.redis_url or embedded_redis_url(settings.home)


def _live(url: str | None, exchange_ids: list[int]) -> dict[str, Any] | None:
    """The worker's view in Redis (fresher than the database); None when Redis is not running."""
    import redis

    from streaming.control.status import live_status, read_status

    if not url:
        return None
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1, socket_timeout=2)
    try:
        live = live_status(client)
        live["by_id"] = {i: read_status(client, i) for i in exchange_ids}
        return live
    except (redis.RedisError, OSError, ValueError):
        return None
    finally:
        client.close()


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    engine = make_engine(settings.database_url)
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
        print(json.dumps({"exchanges": exchanges, "workers": workers, "redis": live is not None,
                          "redis_url": mask_url(redis_url) if redis_url else None}, indent=2, default=str))
        return 0
    console = Console(width=150)
    table = Table(title="Livermore exchanges")
    for col in ("id", "name", "display name", "active", "state", "connected at", "last heartbeat", "last error"):
        table.add_column(col)
    for r in exchanges:
        table.add_row(str(r["id"]), r["name"], r["display_name"], "yes" if r["active"] else "no",
                      r["connection_state"], r["connected_at"] or "-", r["last_heartbeat"] or "-",
                      r["last_error"] or "-")
    console.print(table)
    if live is None:
        console.print("redis: not running (no live state; start the platform with `livermore up`)")
    elif not workers:
        console.print("workers: none running")
    else:
        for w in workers:
            console.print(f"worker {w.get('worker_id')} pid {w.get('pid')} shard {w.get('shard') or '-'} "
                          f"exchanges {w.get('exchanges') or {}} last heartbeat {w.get('last_heartbeat')}")
    return 0


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
