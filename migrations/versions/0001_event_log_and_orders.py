"""The event log, the orders read table and the projectors' checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from eventstore.tables import Json, Position, Xid8

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "order_events",
        sa.Column("position", Position, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "transaction_id",
            Xid8() if postgres else sa.BigInteger(),
            nullable=False,
            server_default=sa.text("pg_current_xact_id()" if postgres else "0"),
        ),
        sa.UniqueConstraint("order_id", "version", name="order_events_order_id_version_key"),
    )
    if postgres:  # the followers' (transaction id, position) cursor
        op.create_index("order_events_follow_idx", "order_events", ["transaction_id", "position"])

    op.create_table(
        "orders",
        sa.Column("order_id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("token_in", sa.String(16), nullable=False),
        sa.Column("token_out", sa.String(16), nullable=False),
        sa.Column("amount_in", sa.Float, nullable=False),
        sa.Column("slippage_bps", sa.Integer, nullable=False),
        sa.Column("selected_venue", sa.String(16)),
        sa.Column("execution_price", sa.Float),
        sa.Column("amount_out", sa.Float),
        sa.Column("tx_hash", sa.String(100)),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("failure_reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index("orders_created_idx", "orders", ["created_at", "order_id"])
    op.create_index("orders_status_created_idx", "orders", ["status", "created_at", "order_id"])

    op.create_table(
        "projection_checkpoints",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("commit_id", sa.BigInteger, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("projection_checkpoints")
    op.drop_table("orders")
    op.drop_table("order_events")
