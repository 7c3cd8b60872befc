"""The log's table, `order_events`: append-only, one row per event."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, UserDefinedType

metadata = sa.MetaData()


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id type."""

    cache_ok = True

    def get_col_spec(self, **_: object) -> str:
        return "xid8"


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always reads back zone-aware in UTC (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite wants INTEGER PRIMARY KEY for an auto-incrementing rowid.
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")

order_events = sa.Table(
    "order_events",
    metadata,
    sa.Column("position", Position, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(36), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("data", Json, nullable=False),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    # PostgreSQL: the appending transaction (default pg_current_xact_id()); SQLite: always 0.
    sa.Column("transaction_id", sa.BigInteger().with_variant(Xid8(), "postgresql"), nullable=False),
    sa.Column("schema_version", sa.SmallInteger, nullable=False),
    sa.UniqueConstraint("order_id", "version", name="order_events_order_id_version_key"),
)
