"""Exact amounts in the read model: base units as integers, decimals as their text; the route plan.

The float columns go. The `orders` table is a projection: this migration empties it and removes its
checkpoint, so the projector replays the whole log into the new columns when it next starts (old events
are upcast as they are read), as `order-engine projections rebuild orders` would.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FLOAT_COLUMNS = ("amount_in", "execution_price", "amount_out", "price_improvement_bps")


def upgrade() -> None:
    op.execute("DELETE FROM orders")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'orders'")
    with op.batch_alter_table("orders") as batch:
        for column in FLOAT_COLUMNS:
            batch.drop_column(column)
        batch.add_column(sa.Column("amount_in", sa.String(64), nullable=False))
        batch.add_column(sa.Column("amount_in_raw", sa.BigInteger, nullable=False))
        batch.add_column(sa.Column("route_plan", sa.Text))
        batch.add_column(sa.Column("min_amount_out", sa.String(64)))
        batch.add_column(sa.Column("min_amount_out_raw", sa.BigInteger))
        batch.add_column(sa.Column("execution_price", sa.String(64)))
        batch.add_column(sa.Column("amount_out", sa.String(64)))
        batch.add_column(sa.Column("amount_out_raw", sa.BigInteger))
        batch.add_column(sa.Column("price_improvement_bps", sa.String(64)))


def downgrade() -> None:
    op.execute("DELETE FROM orders")
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'orders'")
    with op.batch_alter_table("orders") as batch:
        for column in (*FLOAT_COLUMNS, "amount_in_raw", "route_plan", "min_amount_out", "min_amount_out_raw"):
            batch.drop_column(column)
        batch.add_column(sa.Column("amount_in", sa.Float, nullable=False))
        batch.add_column(sa.Column("execution_price", sa.Float))
        batch.add_column(sa.Column("amount_out", sa.Float))
        batch.add_column(sa.Column("price_improvement_bps", sa.Float))
