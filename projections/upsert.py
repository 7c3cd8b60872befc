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


async def upsert(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows`, replacing every column of a row whose primary key exists."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # One statement with the rows as one JSON document, encoded in one call: thousands of rows (a
        # rebuild's batch) without a bind parameter per value for SQLAlchemy and the driver to handle one
        # by one. JSON has no NaN or infinity; a view's numbers are finite.
        await conn.execute(_recordset_upsert(table), {"rows": rows})
    else:
        await conn.execute(_replacing(_insert(conn, table), table), rows)


def _recordset_upsert(table: sa.Table) -> Any:
    columns = [sa.column(column.name, column.type) for column in table.columns]
    rows = sa.func.json_to_recordset(sa.bindparam("rows", type_=sa.JSON)).table_valued(*columns)
    select = sa.select(rows.render_derived(with_types=True))
    return _replacing(postgresql.insert(table).from_select(list(table.columns), select), table)


def _replacing(statement: Any, table: sa.Table) -> Any:
    key = {column.name for column in table.primary_key}
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={
            column.name: statement.excluded[column.name] for column in table.columns if column.name not in key
        },
    )
