"""The market's tokens: the ones it started with and the ones launched since (market/tables.py).

A market whose database has pools but no tokens yet (made before this revision) records its starting tokens
at its next start.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from eventstore.tables import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "market_tokens",
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("decimals", sa.SmallInteger, nullable=False),
        sa.Column("mint_authority", sa.String(64)),
        sa.Column("freeze_authority", sa.String(64)),
        sa.Column("announced_at", UtcDateTime, nullable=False),
        sa.Column("launched_at", UtcDateTime),
        sa.Column("first_pool", sa.String(64)),
    )


def downgrade() -> None:
    op.drop_table("market_tokens")
