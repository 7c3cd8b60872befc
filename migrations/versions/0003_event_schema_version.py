"""Every event records the schema version of its shape (events stored before this are version 1).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the log.
    op.add_column(
        "order_events", sa.Column("schema_version", sa.SmallInteger, nullable=False, server_default="1")
    )


def downgrade() -> None:
    op.drop_column("order_events", "schema_version")
