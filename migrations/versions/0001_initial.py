"""Initial schema: exchanges, users, user_exchanges, connection status, symbols, positions, alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "exchanges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(32), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_exchanges"),
        sa.UniqueConstraint("name", name="uq_exchanges_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("is_system", sa.Boolean, nullable=False, server_default=sa.false()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("external_id", name="uq_users_external_id"),
    )
    op.create_table(
        "user_exchanges",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("exchange_id", sa.Integer, nullable=False),
        sa.Column("label", sa.String(100), nullable=False, server_default="default"),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("api_key_env", sa.String(200), nullable=False),
        sa.Column("api_secret_env", sa.String(200), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_user_exchanges"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE",
                                name="fk_user_exchanges_user_id_users"),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], name="fk_user_exchanges_exchange_id_exchanges"),
        sa.UniqueConstraint("user_id", "exchange_id", "label", name="uq_user_exchanges_user_id_exchange_id_label"),
    )
    op.create_index("ix_user_exchanges_exchange_id_is_active", "user_exchanges", ["exchange_id", "is_active"])
    op.create_table(
        "exchange_connection_status",
        sa.Column("exchange_id", sa.Integer, nullable=False),
        sa.Column("connection_state", sa.String(16), nullable=False, server_default="idle"),
        sa.Column("connected_at", sa.DateTime(timezone=True)),
        sa.Column("last_heartbeat", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("exchange_id", name="pk_exchange_connection_status"),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], ondelete="CASCADE",
                                name="fk_exchange_connection_status_exchange_id_exchanges"),
        sa.CheckConstraint(
            "connection_state IN ('idle', 'connecting', 'connected', 'disconnected', 'error')",
            name="ck_exchange_connection_status_connection_state",
        ),
    )
    op.create_table(
        "exchange_symbols",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("exchange_id", sa.Integer, nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("base", sa.String(20), nullable=False),
        sa.Column("quote", sa.String(20), nullable=False),
        sa.Column("price", sa.Float),
        sa.Column("volume_24h_quote", sa.Float),
        sa.Column("volume_24h_usd", sa.Float),
        sa.Column("rank", sa.Integer),
        sa.Column("tier", sa.SmallInteger, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exchange_symbols"),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], ondelete="CASCADE",
                                name="fk_exchange_symbols_exchange_id_exchanges"),
        sa.UniqueConstraint("exchange_id", "symbol", name="uq_exchange_symbols_exchange_id_symbol"),
        sa.CheckConstraint("tier IN (1, 2)", name="ck_exchange_symbols_tier"),
    )
    op.create_index("ix_exchange_symbols_exchange_id_tier_rank", "exchange_symbols", ["exchange_id", "tier", "rank"])
    op.create_table(
        "positions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("exchange_id", sa.Integer, nullable=False),
        sa.Column("symbol", sa.String(40), nullable=False),
        sa.Column("asset", sa.String(20), nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("value_usd", sa.Float),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_positions"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE", name="fk_positions_user_id_users"),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], ondelete="CASCADE",
                                name="fk_positions_exchange_id_exchanges"),
        sa.UniqueConstraint("user_id", "exchange_id", "symbol", name="uq_positions_user_id_exchange_id_symbol"),
    )
    op.create_index("ix_positions_exchange_id_symbol", "positions", ["exchange_id", "symbol"])
    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.String(100), nullable=False),
        sa.Column("exchange_id", sa.Integer, nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_alert_history"),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], ondelete="CASCADE",
                                name="fk_alert_history_exchange_id_exchanges"),
        sa.UniqueConstraint("alert_id", name="uq_alert_history_alert_id"),
    )
    op.create_index("ix_alert_history_exchange_id_symbol_timeframe_candle_time", "alert_history",
                    ["exchange_id", "symbol", "timeframe", "candle_time"])
    op.create_index("ix_alert_history_triggered_at", "alert_history", ["triggered_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_history_triggered_at", table_name="alert_history")
    op.drop_index("ix_alert_history_exchange_id_symbol_timeframe_candle_time", table_name="alert_history")
    op.drop_table("alert_history")
    op.drop_index("ix_positions_exchange_id_symbol", table_name="positions")
    op.drop_table("positions")
    op.drop_index("ix_exchange_symbols_exchange_id_tier_rank", table_name="exchange_symbols")
    op.drop_table("exchange_symbols")
    op.drop_table("exchange_connection_status")
    op.drop_index("ix_user_exchanges_exchange_id_is_active", table_name="user_exchanges")
    op.drop_table("user_exchanges")
    op.drop_table("users")
    op.drop_table("exchanges")
