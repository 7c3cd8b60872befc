"""The read side's tables: `orders` (one row per order) and the projectors' checkpoints."""

from __future__ import annotations

import sqlalchemy as sa

from eventstore.tables import UtcDateTime

metadata = sa.MetaData()

orders = sa.Table(
    "orders",
    metadata,
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
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("price_improvement_bps", sa.Float),
)

projection_checkpoints = sa.Table(
    "projection_checkpoints",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    # The checkpoint's transaction id (LogPosition.transaction_id); the column keeps its first name.
    sa.Column("commit_id", sa.BigInteger, nullable=False, key="transaction_id"),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
