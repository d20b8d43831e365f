"""Seed rows of `exchanges` and their idle connection status; idempotent.

Rows that already exist are left as they are: an operator who deactivated an exchange or
changed a URL keeps the change across upgrades.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from streaming.db.schema import exchange_connection_status, exchanges

BINANCE_TIMEFRAMES = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
                      "1w", "1M"]


def _binance_limits(rest_weight_per_minute: int) -> dict[str, int]:
    """Binance and Binance.US share their WebSocket limits; the REST weight budget differs."""
    return {
        "rest_weight_per_minute": rest_weight_per_minute,
        "ws_connections_per_5m": 300,
        "ws_streams_per_connection": 1024,
        "ws_incoming_messages_per_second": 5,
        "ws_connection_lifetime_hours": 24,
        "rest_candles_per_request": 1000,
    }


EXCHANGES: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "coinbase",
        "display_name": "Coinbase Advanced Trade",
        "ws_url": "wss://advanced-trade-ws.coinbase.com",
        "rest_url": "https://api.coinbase.com",
        "rest_timeframes": ["1m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "1d"],
        "ws_timeframes": ["5m"],
        "api_limits": {
            "ws_connections_per_second": 8,
            "ws_messages_per_second": 8,
            "rest_public_per_second": 10,
            "rest_private_per_second": 30,
            "rest_candles_per_request": 300,
        },
        "fee_schedule": {"maker": 0.006, "taker": 0.012},
        "geo_restrictions": {},
        "is_active": True,
    },
    {
        "id": 2,
        "name": "binance",
        "display_name": "Binance",
        "ws_url": "wss://stream.binance.com:9443",
        "rest_url": "https://api.binance.com",
        "rest_timeframes": BINANCE_TIMEFRAMES,
        "ws_timeframes": BINANCE_TIMEFRAMES,
        "api_limits": _binance_limits(rest_weight_per_minute=6000),
        "fee_schedule": {"maker": 0.001, "taker": 0.001},
        "geo_restrictions": {"blocked_countries": ["US"]},
        "is_active": True,
    },
    {
        "id": 3,
        "name": "binance_us",
        "display_name": "Binance.US",
        "ws_url": "wss://stream.binance.us:9443",
        "rest_url": "https://api.binance.us",
        "rest_timeframes": BINANCE_TIMEFRAMES,
        "ws_timeframes": BINANCE_TIMEFRAMES,
        "api_limits": _binance_limits(rest_weight_per_minute=1200),
        "fee_schedule": {"maker": 0.001, "taker": 0.001},
        "geo_restrictions": {"allowed_countries": ["US"]},
        "is_active": True,
    },
]


def seed(conn: sa.Connection) -> int:
    """Insert the missing seed rows; return how many were inserted."""
    existing = set(conn.execute(sa.select(exchanges.c.name)).scalars())
    inserted = 0
    for row in EXCHANGES:
        if row["name"] in existing:
            continue
        conn.execute(exchanges.insert().values(**row))
        inserted += 1
    have_status = set(conn.execute(sa.select(exchange_connection_status.c.exchange_id)).scalars())
    for exchange_id in conn.execute(sa.select(exchanges.c.id)).scalars():
        if exchange_id not in have_status:
            conn.execute(exchange_connection_status.insert().values(exchange_id=exchange_id, connection_state="idle"))
    return inserted
