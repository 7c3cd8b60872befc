"""The market's state: its pools and its ledger of transactions (market/tables.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from eventstore.tables import Json, UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_pools",
        sa.Column("pool_id", sa.String(64), primary_key=True),
        sa.Column("state", Json, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "market_transactions",
        sa.Column("client_tx_id", sa.String(128), primary_key=True),
        sa.Column("order_id", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("transaction", Json, nullable=False),
        sa.Column("failure", sa.Text),
        sa.Column("outcome", Json),
        sa.Column("sent_at", UtcDateTime, nullable=False),
        sa.Column("lands_at", UtcDateTime, nullable=False),
        sa.Column("decided_at", UtcDateTime),
    )
    op.create_index("ix_market_transactions_order_id", "market_transactions", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_market_transactions_order_id", "market_transactions")
    op.drop_table("market_transactions")
    op.drop_table("market_pools")
