"""Reads and writes of the relational store shared by the CLI, the worker and Dagster."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from streaming.db.schema import exchange_connection_status, exchanges
from streaming.errors import UsageError


def _require_schema(conn: sa.Connection) -> None:
    if not sa.inspect(conn).has_table("exchanges"):
        raise UsageError("the database has no Livermore schema yet; run `livermore db upgrade` first")


def list_exchanges(conn: sa.Connection, active_only: bool = False) -> list[dict[str, Any]]:
    """Every exchanges row with its connection status, ordered by id."""
    _require_schema(conn)
    s = exchange_connection_status
    query = (
        sa.select(
            exchanges,
            s.c.connection_state,
            s.c.connected_at,
            s.c.last_heartbeat,
            s.c.last_error,
            s.c.updated_at.label("status_updated_at"),
        )
        .select_from(exchanges.outerjoin(s, s.c.exchange_id == exchanges.c.id))
        .order_by(exchanges.c.id)
    )
    if active_only:
        query = query.where(exchanges.c.is_active.is_(True))
    return [dict(row._mapping) for row in conn.execute(query)]


def get_exchange(conn: sa.Connection, name: str) -> dict[str, Any]:
    """The exchanges row called `name`; an unknown name is a UsageError naming the known ones."""
    rows = list_exchanges(conn)
    for row in rows:
        if row["name"] == name:
            return row
    known = ", ".join(r["name"] for r in rows) or "(none: run `livermore db upgrade`)"
    raise UsageError(f"unknown exchange {name!r}; known exchanges: {known}")


def set_connection_status(
    conn: sa.Connection,
    exchange_id: int,
    state: str,
    *,
    connected_at: datetime | None = None,
    last_heartbeat: datetime | None = None,
    last_error: str | None = None,
    updated_at: datetime | None = None,
) -> None:
    values: dict[str, Any] = {
        "connection_state": state,
        "connected_at": connected_at,
        "last_heartbeat": last_heartbeat,
        "last_error": last_error,
        "updated_at": updated_at or sa.func.now(),
    }
    s = exchange_connection_status
    updated = conn.execute(s.update().where(s.c.exchange_id == exchange_id).values(**values))
    if updated.rowcount == 0:
        conn.execute(s.insert().values(exchange_id=exchange_id, **values))
