"""Limit orders in the read model: the limit (as a price and as the least amount out) and the expiry.

Only adds columns: orders before limit orders have none of them. The statuses `waiting`, `cancelled` and
`expired` fit the existing `status` column.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("limit_price", sa.String(64)))
        batch.add_column(sa.Column("taking_amount", sa.String(64)))
        batch.add_column(sa.Column("taking_amount_raw", sa.BigInteger))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in ("expires_at", "taking_amount_raw", "taking_amount", "limit_price"):
            batch.drop_column(column)
