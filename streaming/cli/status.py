"""`livermore status`: the home, the exchanges with their connection state, the live workers."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from streaming.cli._common import add_command, settings_for
from streaming.cli._present import exchange_lines, fit, status_progress, worker_lines

if TYPE_CHECKING:
    from streaming.settings import LivermoreSettings


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
    from streaming.db.engine import check_connection, make_engine
    from streaming.db.queries import list_exchanges
    from streaming.settings import mask_url
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
        state = dict(by_id.get(row["id"], {}))
        workers = ((live or {}).get("exchanges", {}).get(row["name"]) or {}).get("workers", [])
        if live is not None and _writers_gone(state, live.get("workers", [])):
            # the workers that wrote it are gone without saying so (killed): nothing streams now
            state.update(connection_state="disconnected", connected_at="", warmup_total="",
                         last_error="no live worker serves it (the one that did stopped without a word)")
        exchanges.append({
            "id": row["id"],
            "name": row["name"],
            "display_name": row["display_name"],
            "active": bool(row["is_active"]),
            "connection_state": state.get("connection_state") or row["connection_state"] or "idle",
            "connected_at": state.get("connected_at") or _iso(row["connected_at"]),
            "last_heartbeat": state.get("last_heartbeat") or _iso(row["last_heartbeat"]),
            "last_error": state.get("last_error") or row["last_error"],
            "warm_up": status_progress(state),
            "warmup_requests": _number(state.get("warmup_requests")),
            "stale_streams": int(state["stale_streams"]) if str(state.get("stale_streams", "")).isdigit() else 0,
            "history_missing": (int(state["history_missing"]) if str(state.get("history_missing", "")).isdigit()
                                else 0),
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


def _writers_gone(state: dict[str, str], workers: list[dict[str, Any]]) -> bool:
    """A merged status saying connected/connecting whose workers (`worker_states`) are all dead."""
    if state.get("connection_state") not in ("connected", "connecting"):
        return False
    try:
        writers = json.loads(state.get("worker_states") or "{}")
    except ValueError:
        return False
    live = {str(w.get("worker_id")) for w in workers}
    return isinstance(writers, dict) and bool(writers) and not live & set(writers)


def _print_human(settings: LivermoreSettings, redis_url: str | None, redis_up: bool,
                 exchanges: list[dict[str, Any]], workers: list[dict[str, Any]]) -> None:
    from streaming.settings import mask_url
    lines = fit(f"home: {settings.home}", more="  ")
    if redis_up and redis_url:
        lines += fit(f"redis: {mask_url(redis_url)}" + (" (embedded)" if settings.embedded_redis else ""), more="  ")
    else:
        lines += fit("redis: not running (no live state; start the platform with `livermore up`)", more="  ")
    lines += ["", "exchanges"]
    for row in exchanges:
        lines += exchange_lines(row)
    lines += ["", "workers" if workers else
              ("workers: none running" if redis_up else "workers: unknown (Redis is not running)")]
    for worker in workers:
        lines += worker_lines(worker)
    print("\n".join(lines))


def _number(value: Any) -> int | None:
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) <= 15 else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
