"""Helpers the exchange-partitioned assets share."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from livermore_pipelines.resources import DatabaseResource
from streaming.db.queries import get_exchange
from streaming.errors import UsageError


def utcnow() -> datetime:
    return datetime.now(UTC)


def exchange_row(database: DatabaseResource, name: str) -> dict[str, Any]:
    """The exchanges row of the partition; a missing schema or an unknown name fails the run clearly."""
    try:
        with database.engine() as engine, engine.connect() as conn:
            row = get_exchange(conn, name)
    except UsageError as exc:
        raise dg.Failure(description=f"{exc} (materialize the `exchanges` asset first)") from None
    if not row["is_active"]:
        raise dg.Failure(description=f"exchange {name!r} is deactivated (exchanges.is_active = false); "
                                     "activate it or do not materialize this partition")
    return row
