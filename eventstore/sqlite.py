"""SQLite: the embedded default. One connection, one writer at a time: the position alone orders the log."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, cast

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from eventstore.base import LogPosition, ReadHorizon
from eventstore.database import JSON_OPTIONS, replacing
from eventstore.signal import AppendSignal
from eventstore.sql import SqlEventStore, c
from eventstore.tables import order_events


class SqliteBackend:
    name = "sqlite"
    shared = False
    batch_alter = True

    def driver_url(self, url: URL, *, asynchronous: bool = True) -> URL:
        return url.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")

    def database_file(self, database_url: str) -> str | None:
        database = sa.make_url(database_url).database
        return None if database in (None, "", ":memory:") else database

    def open(self, database_url: str, *, prepared_statements: bool = True) -> AsyncEngine:
        # One connection, shared in turn: SQLite has one writer anyway, and a single connection can never
        # meet SQLITE_BUSY. Nothing may hold a connection while it asks for another.
        url = self.driver_url(sa.make_url(database_url))
        engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=120, **JSON_OPTIONS)
        event.listen(engine.sync_engine, "connect", _tune)
        return engine

    def one_statement(self, engine: AsyncEngine) -> AsyncEngine:
        return engine  # SQLite keeps its transactions: it has no round trips to save

    def event_store(self, engine: AsyncEngine, signal: AppendSignal) -> SqliteEventStore:
        return SqliteEventStore(engine, signal)

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    async def insert_rows(self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            await conn.execute(_insert_into(table), rows)

    async def upsert(self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            await conn.execute(_replacing_insert(table), rows)

    async def upsert_structs(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[msgspec.Struct]
    ) -> None:
        await self.upsert(conn, table, [msgspec.structs.asdict(row) for row in rows])

    async def upsert_at_once(
        self, conn: AsyncConnection, writes: Sequence[tuple[sa.Table, list[dict[str, Any]]]]
    ) -> None:
        for table, rows in writes:  # (SQLite has no data-modifying CTE; and no round trips to save)
            await self.upsert(conn, table, rows)

    async def execute_static(
        self, conn: AsyncConnection, statement: sa.UpdateBase, params: dict[str, Any]
    ) -> int:
        result: sa.CursorResult[Any] = await conn.execute(statement, params)  # (SQLite has no round trips)
        return result.rowcount

    def one_of(self, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
        return column.in_(sa.bindparam(name, expanding=True))

    def seconds_between(self, later: sa.ColumnElement[Any], earlier: sa.ColumnElement[Any]) -> Any:
        return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400

    # SQLite cannot rename an index, so `replace_table` creates the table's indexes again.

    async def copy_table(self, conn: AsyncConnection, source: sa.Table, copy: str) -> None:
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {copy}")
        (definition,) = (await _schema(conn, "table", source.name)).values()
        await conn.exec_driver_sql(
            re.sub(rf'^CREATE TABLE "?{source.name}"?', f"CREATE TABLE {copy}", definition)
        )

    async def copy_indexes(self, conn: AsyncConnection, source: str, copy: str, suffix: str) -> None:
        for name, definition in (await _schema(conn, "index", source)).items():
            copy_definition = re.sub(rf' ON "?{source}"? ', f" ON {copy} ", definition)
            await conn.exec_driver_sql(copy_definition.replace(f"INDEX {name} ", f"INDEX {name}{suffix} ", 1))

    async def replace_table(self, conn: AsyncConnection, table: str, copy: str, suffix: str) -> None:
        indexes = await _schema(conn, "index", table)
        await conn.exec_driver_sql(f"DROP TABLE {table}")
        await conn.exec_driver_sql(f"ALTER TABLE {copy} RENAME TO {table}")
        for name, definition in indexes.items():
            await conn.exec_driver_sql(f"DROP INDEX {name}{suffix}")
            await conn.exec_driver_sql(definition)


SQLITE = SqliteBackend()


# Built once per table, not for each write.
@functools.cache
def _insert_into(table: sa.Table) -> Any:
    return sqlite.insert(table)


@functools.cache
def _replacing_insert(table: sa.Table) -> Any:
    return replacing(_insert_into(table), table)


def _tune(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


async def _schema(conn: AsyncConnection, kind: str, table: str) -> dict[str, str]:
    """The SQL that created `table` (kind "table") or its indexes (kind "index"), by name."""
    rows = await conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master"
        f" WHERE type = '{kind}' AND tbl_name = '{table}' AND sql IS NOT NULL"
    )
    return dict(cast("list[tuple[str, str]]", rows.all()))


class SqliteEventStore(SqlEventStore):
    """Appends through SQLAlchemy in a transaction; the log's order is the position's."""

    def __init__(self, engine: AsyncEngine, signal: AppendSignal) -> None:
        super().__init__(engine, signal, one_statement=SQLITE.one_statement(engine))

    async def _read_horizon(self) -> ReadHorizon:
        return ReadHorizon()  # one writer at a time: a committed event is visible to every follower

    async def _insert(self, rows: list[dict[str, Any]]) -> Sequence[tuple[int, int]]:
        statement = sa.insert(order_events).returning(
            c.position, self._transaction_id(), sort_by_parameter_order=True
        )
        async with self.engine.begin() as conn:
            return (await conn.execute(statement, rows)).all()

    def _is_version_clash(self, error: IntegrityError) -> bool:
        return "order_events.order_id, order_events.version" in str(error.orig)

    def _insert_defaults(self) -> dict[str, Any]:
        return {"transaction_id": 0}

    def _transaction_id(self) -> sa.ColumnElement[int]:
        return sa.literal(0, sa.BigInteger).label("transaction_id")

    def _past(self, after: LogPosition) -> sa.ColumnElement[bool]:
        return c.position > after.position

    def _after(self, after: LogPosition) -> sa.ColumnElement[bool]:
        return self._past(after)

    def _log_order(self) -> tuple[sa.ColumnElement[Any], ...]:
        return (c.position,)
