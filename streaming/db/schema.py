"""The relational schema. Alembic migrations in migrations/versions must match it (tested)."""

from __future__ import annotations

import sqlalchemy as sa

# Stable constraint names: Alembic can drop them on PostgreSQL and in SQLite batch mode.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

CONNECTION_STATES = ("idle", "connecting", "connected", "disconnected", "error")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


exchanges = sa.Table(
    "exchanges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(32), nullable=False, unique=True),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("ws_url", sa.String(500), nullable=False),
    sa.Column("rest_url", sa.String(500), nullable=False),
    sa.Column("rest_timeframes", sa.JSON, nullable=False),
    sa.Column("ws_timeframes", sa.JSON, nullable=False),
    sa.Column("api_limits", sa.JSON, nullable=False),
    sa.Column("fee_schedule", sa.JSON, nullable=False),
    sa.Column("geo_restrictions", sa.JSON, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    *_timestamps(),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("external_id", sa.String(200), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("is_system", sa.Boolean, nullable=False, server_default=sa.false()),
    *_timestamps(),
)

user_exchanges = sa.Table(
    "user_exchanges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("exchange_id", sa.Integer, sa.ForeignKey("exchanges.id"), nullable=False),
    sa.Column("label", sa.String(100), nullable=False, server_default="default"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
    # NAMES of environment variables; the secrets themselves are never stored
    sa.Column("api_key_env", sa.String(200), nullable=False),
    sa.Column("api_secret_env", sa.String(200), nullable=False),
    *_timestamps(),
    sa.UniqueConstraint("user_id", "exchange_id", "label"),
    sa.Index(None, "exchange_id", "is_active"),
)

exchange_connection_status = sa.Table(
    "exchange_connection_status",
    metadata,
    sa.Column(
        "exchange_id", sa.Integer, sa.ForeignKey("exchanges.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("connection_state", sa.String(16), nullable=False, server_default="idle"),
    sa.Column("connected_at", sa.DateTime(timezone=True)),
    sa.Column("last_heartbeat", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(
        "connection_state IN ('idle', 'connecting', 'connected', 'disconnected', 'error')",
        name="connection_state",
    ),
)

exchange_symbols = sa.Table(
    "exchange_symbols",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("exchange_id", sa.Integer, sa.ForeignKey("exchanges.id", ondelete="CASCADE"), nullable=False),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("base", sa.String(20), nullable=False),
    sa.Column("quote", sa.String(20), nullable=False),
    sa.Column("price", sa.Float),
    sa.Column("volume_24h_quote", sa.Float),
    sa.Column("volume_24h_usd", sa.Float),
    sa.Column("rank", sa.Integer),
    sa.Column("tier", sa.SmallInteger, nullable=False),
    sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("exchange_id", "symbol"),
    sa.Index(None, "exchange_id", "tier", "rank"),
    sa.CheckConstraint("tier IN (1, 2)", name="tier"),
)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("exchange_id", sa.Integer, sa.ForeignKey("exchanges.id", ondelete="CASCADE"), nullable=False),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("asset", sa.String(20), nullable=False),
    sa.Column("quantity", sa.Float, nullable=False),
    sa.Column("value_usd", sa.Float),
    sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("user_id", "exchange_id", "symbol"),
    sa.Index(None, "exchange_id", "symbol"),
)

alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # the alert's own id (from the Redis stream): archiving twice inserts once
    sa.Column("alert_id", sa.String(100), nullable=False, unique=True),
    sa.Column("exchange_id", sa.Integer, sa.ForeignKey("exchanges.id", ondelete="CASCADE"), nullable=False),
    sa.Column("symbol", sa.String(40), nullable=False),
    sa.Column("timeframe", sa.String(8), nullable=False),
    sa.Column("alert_type", sa.String(16), nullable=False),
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("macd_v", sa.Float),
    sa.Column("signal", sa.Float),
    sa.Column("histogram", sa.Float),
    sa.Column("price", sa.Float),
    sa.Column("candle_time", sa.BigInteger, nullable=False),
    sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Index(None, "exchange_id", "symbol", "timeframe", "candle_time"),
    sa.Index(None, "triggered_at"),
)

# --- alert delivery (livermore notify, docs/alert-delivery.md) ---------------------------------

notify_destinations = sa.Table(
    "notify_destinations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    # a template: secrets are {VARIABLE} NAMES, resolved by the sending process; never values
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret_env", sa.String(200)),  # webhooks: NAME of the variable holding the HMAC secret
    sa.Column("rate_count", sa.Integer),  # both null: the service's default limit
    sa.Column("rate_window_s", sa.Float),
    sa.Column("charts", sa.Boolean, nullable=False, server_default=sa.true()),
    *_timestamps(),
    sa.CheckConstraint("kind IN ('webhook', 'apprise')", name="kind"),
    sa.CheckConstraint("(rate_count IS NULL) = (rate_window_s IS NULL)", name="rate"),
)

notify_subscriptions = sa.Table(
    "notify_subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("destination_id", sa.Integer, sa.ForeignKey("notify_destinations.id", ondelete="CASCADE"),
              nullable=False),
    # every filter: null = no restriction
    sa.Column("exchange_id", sa.Integer, sa.ForeignKey("exchanges.id", ondelete="CASCADE")),
    sa.Column("symbols", sa.JSON),
    sa.Column("tiers", sa.JSON),
    sa.Column("timeframes", sa.JSON),
    sa.Column("alert_types", sa.JSON),
    sa.Column("min_level", sa.Float),
    *_timestamps(),
    sa.Index(None, "destination_id"),
)
