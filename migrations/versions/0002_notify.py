"""Alert delivery: notify_destinations and notify_subscriptions (livermore notify).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    ]


def upgrade() -> None:
    op.create_table(
        "notify_destinations",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret_env", sa.String(200)),
        sa.Column("rate_count", sa.Integer),
        sa.Column("rate_window_s", sa.Float),
        sa.Column("charts", sa.Boolean, nullable=False, server_default=sa.true()),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_notify_destinations"),
        sa.UniqueConstraint("name", name="uq_notify_destinations_name"),
        sa.CheckConstraint("kind IN ('webhook', 'apprise')", name="ck_notify_destinations_kind"),
        sa.CheckConstraint("(rate_count IS NULL) = (rate_window_s IS NULL)", name="ck_notify_destinations_rate"),
    )
    op.create_table(
        "notify_subscriptions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("destination_id", sa.Integer, nullable=False),
        sa.Column("exchange_id", sa.Integer),
        sa.Column("symbols", sa.JSON),
        sa.Column("tiers", sa.JSON),
        sa.Column("timeframes", sa.JSON),
        sa.Column("alert_types", sa.JSON),
        sa.Column("min_level", sa.Float),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_notify_subscriptions"),
        sa.ForeignKeyConstraint(["destination_id"], ["notify_destinations.id"], ondelete="CASCADE",
                                name="fk_notify_subscriptions_destination_id_notify_destinations"),
        sa.ForeignKeyConstraint(["exchange_id"], ["exchanges.id"], ondelete="CASCADE",
                                name="fk_notify_subscriptions_exchange_id_exchanges"),
    )
    op.create_index("ix_notify_subscriptions_destination_id", "notify_subscriptions", ["destination_id"])


def downgrade() -> None:
    op.drop_index("ix_notify_subscriptions_destination_id", table_name="notify_subscriptions")
    op.drop_table("notify_subscriptions")
    op.drop_table("notify_destinations")
