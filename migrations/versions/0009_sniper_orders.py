"""Sniper orders in the read model: the launched token's precision, the least liquidity a pool must hold and
the most time after the launch the order may buy.

Only adds columns: orders before sniper orders have none of them. `token_out_decimals` is set for a token
launched after the engine's list was written (a sniper order's), which the read side cannot look up in it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("token_out_decimals", sa.SmallInteger))
        batch.add_column(sa.Column("min_liquidity", sa.String(64)))
        batch.add_column(sa.Column("min_liquidity_raw", sa.BigInteger))
        batch.add_column(sa.Column("max_delay_ms", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        for column in ("max_delay_ms", "min_liquidity_raw", "min_liquidity", "token_out_decimals"):
            batch.drop_column(column)
