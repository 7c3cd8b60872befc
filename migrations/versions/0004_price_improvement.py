"""A new read-model column: how much better the chosen venue's quote was than the other's, in bps.

This migration only adds the column. It is filled for every past order by replaying the log, not by an
UPDATE: `order-engine projections rebuild orders` (new orders get it from the live projector right away).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("price_improvement_bps", sa.Float, nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "price_improvement_bps")
