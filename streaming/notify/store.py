"""Destinations and subscriptions in the database (tables notify_destinations, notify_subscriptions).

Adding checks everything first (URL, variables, exchange, filters) and writes nothing on a refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from streaming.db.queries import get_exchange
from streaming.db.schema import exchange_symbols, notify_destinations, notify_subscriptions
from streaming.errors import UsageError
from streaming.notify.destinations import (
    Destination,
    InvalidDestination,
    RateLimit,
    check_name,
    classify,
    stored_default,
)
from streaming.notify.subscriptions import InvalidSubscription, Subscription, check_filters


def _require_schema(conn: sa.Connection) -> None:
    if not sa.inspect(conn).has_table("notify_destinations"):
        raise UsageError("the database has no alert-delivery tables yet; run `livermore db upgrade` first")


def _destination(row: Mapping[str, Any] | sa.RowMapping) -> Destination:
    rate = RateLimit(int(row["rate_count"]), float(row["rate_window_s"])) if row["rate_count"] else None
    return Destination(int(row["id"]), row["name"], row["kind"], row["url"], row["secret_env"], rate,
                       bool(row["charts"]))


def _tuple(value: Any) -> tuple | None:
    return tuple(value) if value else None


def _subscription(row: Mapping[str, Any] | sa.RowMapping) -> Subscription:
    return Subscription(int(row["id"]), int(row["destination_id"]), row["exchange_id"], _tuple(row["symbols"]),
                        _tuple(row["tiers"]), _tuple(row["timeframes"]), _tuple(row["alert_types"]),
                        row["min_level"])


def list_destinations(conn: sa.Connection) -> list[Destination]:
    _require_schema(conn)
    rows = conn.execute(sa.select(notify_destinations).order_by(notify_destinations.c.id))
    return [_destination(r._mapping) for r in rows]


def list_subscriptions(conn: sa.Connection) -> list[Subscription]:
    _require_schema(conn)
    rows = conn.execute(sa.select(notify_subscriptions).order_by(notify_subscriptions.c.id))
    return [_subscription(r._mapping) for r in rows]


def get_destination(conn: sa.Connection, name: str) -> Destination:
    _require_schema(conn)
    row = conn.execute(sa.select(notify_destinations).where(notify_destinations.c.name == name)).first()
    if row is None:
        known = ", ".join(d.name for d in list_destinations(conn)) or "none yet"
        raise InvalidDestination(f"no destination named {name!r} (destinations: {known})")
    return _destination(row._mapping)


def add_destination(conn: sa.Connection, name: str, url: str, env: Mapping[str, str], secret_env: str | None = None,
                    rate: RateLimit | None = None, charts: bool = True) -> Destination:
    """Check and insert a destination; InvalidDestination says why one is refused."""
    _require_schema(conn)
    check_name(name)
    if conn.execute(sa.select(notify_destinations.c.id).where(notify_destinations.c.name == name)).first():
        raise InvalidDestination(f"destination {name!r} exists; `livermore notify add {name}` without a URL adds a "
                                 "subscription to it, `livermore notify remove` deletes it")
    kind = classify(url, secret_env, env)
    if rate is None:
        rate = stored_default(url, kind, env)
    new_id = conn.execute(notify_destinations.insert().values(
        name=name, kind=kind, url=url, secret_env=secret_env, charts=charts,
        rate_count=rate.count if rate else None, rate_window_s=rate.window_s if rate else None,
    )).inserted_primary_key[0]  # type: ignore[index]  # an INSERT always has one
    return Destination(int(new_id), name, kind, url, secret_env, rate, charts)


def add_subscription(conn: sa.Connection, destination: Destination, exchange: str | None = None,
                     **filters: Any) -> Subscription:
    """Check and insert a subscription; InvalidSubscription (or UsageError for an unknown exchange)."""
    values = check_filters(**filters)
    exchange_id = None
    if exchange is not None:
        try:
            exchange_id = int(get_exchange(conn, exchange)["id"])
        except UsageError as exc:
            raise InvalidSubscription(str(exc)) from None
    stored = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
    new_id = conn.execute(notify_subscriptions.insert().values(
        destination_id=destination.id, exchange_id=exchange_id, symbols=stored["symbols"], tiers=stored["tiers"],
        timeframes=stored["timeframes"], alert_types=stored["types"], min_level=stored["min_level"],
    )).inserted_primary_key[0]  # type: ignore[index]  # an INSERT always has one
    return Subscription(int(new_id), destination.id, exchange_id, values["symbols"], values["tiers"],
                        values["timeframes"], values["types"], values["min_level"])


def remove_destination(conn: sa.Connection, name: str) -> Destination:
    dest = get_destination(conn, name)
    conn.execute(notify_subscriptions.delete().where(notify_subscriptions.c.destination_id == dest.id))
    conn.execute(notify_destinations.delete().where(notify_destinations.c.id == dest.id))
    return dest


def remove_subscription(conn: sa.Connection, name: str, subscription_id: int) -> None:
    dest = get_destination(conn, name)
    s = notify_subscriptions
    if conn.execute(s.delete().where(s.c.id == subscription_id, s.c.destination_id == dest.id)).rowcount == 0:
        raise InvalidSubscription(f"destination {name!r} has no subscription {subscription_id} "
                                  "(`livermore notify list` shows them)")


def symbol_tiers(conn: sa.Connection) -> dict[tuple[int, str], int]:
    """(exchange_id, symbol) -> tier of exchange_symbols, for subscriptions filtered by tier."""
    rows = conn.execute(sa.select(exchange_symbols.c.exchange_id, exchange_symbols.c.symbol, exchange_symbols.c.tier))
    return {(int(e), s): int(t) for e, s, t in rows}
