"""Indexes for the order list's filters: by pair and by venue, newest first.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("orders_pair_created_idx", "orders", ["token_in", "token_out", "created_at", "order_id"])
    op.create_index("orders_venue_created_idx", "orders", ["selected_venue", "created_at", "order_id"])


def downgrade() -> None:
    op.drop_index("orders_venue_created_idx", "orders")
    op.drop_index("orders_pair_created_idx", "orders")
