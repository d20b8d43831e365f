"""`livermore status`: exchanges, their connection state, and the live side if Redis is up."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from streaming.db.engine import check_connection, make_engine
from streaming.db.queries import list_exchanges
from streaming.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="exchanges with their connection state, and running workers")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def _live_status(settings) -> dict[int, dict[str, str]] | None:
    """Connection state the worker keeps in Redis (fresher than the database), if Redis runs."""
    import redis

    from streaming import keys
    from streaming.redis_server import embedded_redis_url

    url = settings.redis_url or embedded_redis_url(settings.home)
    if not url:
        return None
    client = redis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=1, socket_timeout=2)
    try:
        ids = [int(i) for i in client.hvals(keys.EXCHANGES_BY_NAME)] or [1, 2, 3]
        return {i: client.hgetall(keys.exchange_status(i)) for i in ids}
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
    live = _live_status(settings) or {}
    out = []
    for row in rows:
        state = live.get(row["id"], {})
        out.append({
            "id": row["id"],
            "name": row["name"],
            "display_name": row["display_name"],
            "active": bool(row["is_active"]),
            "connection_state": state.get("connection_state") or row["connection_state"] or "idle",
            "connected_at": state.get("connected_at") or _iso(row["connected_at"]),
            "last_heartbeat": state.get("last_heartbeat") or _iso(row["last_heartbeat"]),
            "last_error": state.get("last_error") or row["last_error"],
        })
    if args.json:
        print(json.dumps({"exchanges": out}, indent=2))
        return 0
    table = Table(title="Livermore exchanges")
    for col in ("id", "name", "display name", "active", "state", "connected at", "last heartbeat", "last error"):
        table.add_column(col)
    for r in out:
        table.add_row(str(r["id"]), r["name"], r["display_name"], "yes" if r["active"] else "no",
                      r["connection_state"], r["connected_at"] or "-", r["last_heartbeat"] or "-",
                      r["last_error"] or "-")
    Console(width=140).print(table)
    return 0


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None
