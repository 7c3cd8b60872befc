"""INSERT ... ON CONFLICT in the dialect of the connection (PostgreSQL and SQLite both have it)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def _insert(conn: AsyncConnection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_ignoring_duplicates(conn: AsyncConnection, table: sa.Table) -> Any:
    return _insert(conn, table).on_conflict_do_nothing()


def upsert(conn: AsyncConnection, table: sa.Table) -> Any:
    """Insert rows, replacing every column of a row whose primary key exists."""
    statement = _insert(conn, table)
    key = {column.name for column in table.primary_key}
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={
            column.name: statement.excluded[column.name] for column in table.columns if column.name not in key
        },
    )
