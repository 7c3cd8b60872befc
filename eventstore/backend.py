"""What differs between the databases the engine runs on, behind one interface.

Each backend (PostgreSQL in `eventstore/postgres.py`, SQLite in `eventstore/sqlite.py`) is one object that
holds all of its differences: how its engine is opened, its event store, its upserts, its time arithmetic
and how a table is put in another's place. The composition root (`engine/services.py`) chooses the backend
once, from DATABASE_URL, and hands it to whatever needs it; nothing else asks which database it runs on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from eventstore.postgres import POSTGRES
from eventstore.sqlite import SQLITE

if TYPE_CHECKING:
    import msgspec
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from eventstore.signal import AppendSignal
    from eventstore.sql import SqlEventStore


class Backend(Protocol):
    name: str  # SQLAlchemy's name for it: "postgresql", "sqlite"
    shared: bool  # processes on other machines can use one database at once (separate roles need it)
    batch_alter: bool  # Alembic must recreate a table to alter it (SQLite's ALTER TABLE is limited)

    def driver_url(self, url: URL, *, asynchronous: bool = True) -> URL:
        """`url` with the driver we use for this database."""
        ...

    def database_file(self, database_url: str) -> str | None:
        """The file that holds the database, as DATABASE_URL writes it (None for a server's database)."""
        ...

    def open(self, database_url: str, *, prepared_statements: bool = True) -> AsyncEngine:
        """The pool of connections the engine uses; without `prepared_statements` the driver prepares
        none (for a pooler that hands each transaction whichever server connection is free)."""
        ...

    def one_statement(self, engine: AsyncEngine) -> AsyncEngine:
        """The same pool, for work that is one statement (a read, one INSERT)."""
        ...

    def event_store(self, engine: AsyncEngine, signal: AppendSignal) -> SqlEventStore:
        """The log on this database."""
        ...

    def insert(self, table: sa.Table) -> Any:
        """An INSERT that takes `ON CONFLICT` clauses (`on_conflict_do_nothing`, `on_conflict_do_update`)."""
        ...

    async def insert_rows(self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert `rows` (every column of `table` in each) in one statement; raises IntegrityError for a
        primary key that exists."""
        ...

    async def upsert(self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """Insert `rows`, replacing every column of a row whose primary key exists."""
        ...

    async def upsert_structs(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[msgspec.Struct]
    ) -> None:
        """`upsert` of rows given as structs of one type, a field per column of `table` under the column's
        name (the struct may rename it when encoded)."""
        ...

    async def upsert_at_once(
        self, conn: AsyncConnection, writes: Sequence[tuple[sa.Table, list[dict[str, Any]]]]
    ) -> None:
        """Each table's rows as `upsert` writes them, in one statement where the database has a way (so that
        in autocommit, `one_statement`, they are one round trip and all or nothing), else one by one in the
        caller's transaction."""
        ...

    async def execute_static(
        self, conn: AsyncConnection, statement: sa.UpdateBase, params: dict[str, Any]
    ) -> int:
        """Run `statement` (an INSERT, UPDATE or DELETE built once, whose bind parameters take plain values:
        no type of its columns converts them) with `params`; how many rows it changed."""
        ...

    def one_of(self, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
        """`column` is one of the list bound as `name`: a statement that can be built once."""
        ...

    def seconds_between(self, later: sa.ColumnElement[Any], earlier: sa.ColumnElement[Any]) -> Any:
        """The time from `earlier` to `later` (two timestamp columns), in seconds."""
        ...

    async def copy_table(self, conn: AsyncConnection, source: sa.Table, copy: str) -> None:
        """Create `copy` (dropping any old one) with the columns and constraints of `source`, empty."""
        ...

    async def copy_indexes(self, conn: AsyncConnection, source: str, copy: str, suffix: str) -> None:
        """Give `copy` the indexes of `source`, each named as the source's plus `suffix`."""
        ...

    async def replace_table(self, conn: AsyncConnection, table: str, copy: str, suffix: str) -> None:
        """Drop `table` and put `copy` (made by `copy_table` and `copy_indexes`) in its place, under its name
        and its index names."""
        ...


def backend_for(database_url: str) -> Backend:
    """The backend DATABASE_URL names; ValueError for any other URL."""
    try:
        url = make_url(database_url)
    except ArgumentError as error:
        raise ValueError(str(error)) from None
    backends: tuple[Backend, ...] = (POSTGRES, SQLITE)  # (typed, so that mypy checks each keeps the Protocol)
    for backend in backends:
        if url.get_backend_name() == backend.name:
            return backend
    raise ValueError(f"DATABASE_URL must be sqlite:///... or postgresql://..., not {url.drivername}://")


def driver_url(database_url: str, *, asynchronous: bool = True) -> URL:
    """DATABASE_URL with the driver we use for its database (psycopg, aiosqlite or sqlite3)."""
    return backend_for(database_url).driver_url(make_url(database_url), asynchronous=asynchronous)
