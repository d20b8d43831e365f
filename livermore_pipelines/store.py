"""Reads and writes the assets do on the relational store and Redis (thin I/O, one place)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, cast

import redis
import sqlalchemy as sa

from livermore_pipelines.ranking import RankedSymbol
from livermore_pipelines.universe_builder import UniverseEntry
from livermore_pipelines.valuation import Holding
from streaming import keys
from streaming.db.queries import list_exchanges
from streaming.db.schema import exchange_symbols, positions, user_exchanges


def _json_default(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: object) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


# --- exchanges ---------------------------------------------------------------------------------

def sync_exchange_meta(r: redis.Redis, rows: Sequence[Mapping[str, Any]]) -> None:
    """exchange_meta(id) JSON per row and the name -> id HASH, replaced atomically."""
    pipe = r.pipeline(transaction=True)
    pipe.delete(keys.EXCHANGES_BY_NAME)
    for row in rows:
        pipe.set(keys.exchange_meta(int(row["id"])), to_json(dict(row)))
    if rows:
        pipe.hset(keys.EXCHANGES_BY_NAME, mapping={row["name"]: int(row["id"]) for row in rows})
    pipe.execute()


def mirror_exchanges(conn: sa.Connection, r: redis.Redis) -> list[dict[str, Any]]:
    """The `exchanges` table's rows, mirrored into Redis (sync_exchange_meta); returns the rows."""
    rows = list_exchanges(conn)
    sync_exchange_meta(r, rows)
    return rows


# --- tier 1 ------------------------------------------------------------------------------------

def replace_tier1(conn: sa.Connection, exchange_id: int, ranked: Sequence[RankedSymbol], now: datetime) -> None:
    """Tier 1 rows of one exchange replaced (call inside one transaction).

    A symbol ranked now that was a Tier 2 row becomes Tier 1: its old row goes first, so the
    unique (exchange_id, symbol) holds.
    """
    t = exchange_symbols
    symbols = [r.symbol for r in ranked]
    cond = t.c.tier == 1
    if symbols:
        cond = sa.or_(cond, t.c.symbol.in_(symbols))
    conn.execute(t.delete().where(t.c.exchange_id == exchange_id, cond))
    if ranked:
        conn.execute(t.insert(), [
            {"exchange_id": exchange_id, "symbol": r.symbol, "base": r.base[:20], "quote": r.quote[:20],
             "price": r.price, "volume_24h_quote": r.volume_24h_quote, "volume_24h_usd": r.volume_24h_usd,
             "rank": r.rank, "tier": 1, "refreshed_at": now}
            for r in ranked
        ])


def read_tier1(conn: sa.Connection, exchange_id: int) -> list[str]:
    t = exchange_symbols
    rows = conn.execute(sa.select(t.c.symbol).where(t.c.exchange_id == exchange_id, t.c.tier == 1)
                        .order_by(t.c.rank, t.c.symbol))
    return list(rows.scalars())


def write_tier1_redis(r: redis.Redis, exchange_id: int, exchange: str, updated_at: str,
                      ranked: Sequence[RankedSymbol]) -> None:
    r.set(keys.tier1(exchange_id), to_json({
        "exchange_id": exchange_id, "exchange": exchange, "updated_at": updated_at,
        "symbols": [{"rank": s.rank, "symbol": s.symbol, "price": s.price, "volume_24h_usd": s.volume_24h_usd}
                    for s in ranked],
    }))


# --- tier 2 ------------------------------------------------------------------------------------

def active_accounts(conn: sa.Connection, exchange_id: int) -> list[dict[str, Any]]:
    ue = user_exchanges
    rows = conn.execute(
        sa.select(ue.c.id, ue.c.user_id, ue.c.label, ue.c.api_key_env, ue.c.api_secret_env)
        .where(ue.c.exchange_id == exchange_id, ue.c.is_active.is_(True))
        .order_by(ue.c.user_id, ue.c.label))
    return [dict(row._mapping) for row in rows]


def replace_positions(conn: sa.Connection, user_id: int, exchange_id: int, holdings: Iterable[Holding],
                      now: datetime) -> int:
    p = positions
    conn.execute(p.delete().where(p.c.user_id == user_id, p.c.exchange_id == exchange_id))
    values = [{"user_id": user_id, "exchange_id": exchange_id, "symbol": h.symbol, "asset": h.asset[:20],
               "quantity": h.quantity, "value_usd": h.value_usd, "synced_at": now} for h in holdings]
    if values:
        conn.execute(p.insert(), values)
    return len(values)


def read_tier2(conn: sa.Connection, exchange_id: int) -> list[dict[str, Any]]:
    """Positions of users whose account on this exchange is still active."""
    p, ue = positions, user_exchanges
    active_users = sa.select(ue.c.user_id).where(ue.c.exchange_id == exchange_id, ue.c.is_active.is_(True))
    rows = conn.execute(
        sa.select(p.c.user_id, p.c.symbol, p.c.asset, p.c.quantity, p.c.value_usd)
        .where(p.c.exchange_id == exchange_id, p.c.user_id.in_(active_users))
        .order_by(p.c.symbol, p.c.user_id))
    return [dict(row._mapping) for row in rows]


# --- universe ----------------------------------------------------------------------------------

def _quote_of(symbol: str, asset: str) -> str:
    rest = symbol[len(asset):] if symbol.upper().startswith(asset.upper()) else symbol
    return rest.lstrip("-/_")[:20] or "?"


def replace_tier2_symbols(conn: sa.Connection, exchange_id: int, entries: Sequence[UniverseEntry],
                          tier2: Sequence[Mapping[str, Any]], now: datetime) -> None:
    t = exchange_symbols
    conn.execute(t.delete().where(t.c.exchange_id == exchange_id, t.c.tier == 2))
    by_symbol: dict[str, Mapping[str, Any]] = {}
    for row in tier2:
        by_symbol.setdefault(row["symbol"], row)
    values = []
    for e in entries:
        if e.tier != 2:
            continue
        row = by_symbol[e.symbol]
        qty = row.get("quantity") or 0.0
        price = (row.get("value_usd") or 0.0) / qty if qty else None
        values.append({"exchange_id": exchange_id, "symbol": e.symbol, "base": str(row["asset"])[:20],
                       "quote": _quote_of(e.symbol, str(row["asset"])), "price": price,
                       "volume_24h_quote": None, "volume_24h_usd": None, "rank": None, "tier": 2,
                       "refreshed_at": now})
    if values:
        conn.execute(t.insert(), values)


def write_universe(r: redis.Redis, exchange_id: int, document: Mapping[str, Any]) -> None:
    r.set(keys.universe(exchange_id), to_json(dict(document)))


def read_universe(r: redis.Redis, exchange_id: int) -> dict[str, Any] | None:
    raw = cast("bytes | str | None", r.get(keys.universe(exchange_id)))
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
