"""Opening the database named by DATABASE_URL: PostgreSQL (psycopg) or an embedded SQLite file."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def is_sqlite(database_url: str) -> bool:
    return make_url(database_url).get_backend_name() == "sqlite"


def driver_url(database_url: str, *, asynchronous: bool = True) -> URL:
    """The URL with the driver we use: psycopg for PostgreSQL, aiosqlite (or sqlite3) for SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+aiosqlite" if asynchronous else "sqlite")
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(f"DATABASE_URL must be sqlite:///... or postgresql://..., not {url.drivername}://")


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def open_database(database_url: str) -> AsyncEngine:
    url = driver_url(database_url)
    json = {"json_serializer": _json_dumps, "json_deserializer": msgspec.json.decode}
    if url.get_backend_name() != "sqlite":
        # No pre-ping: it is a round trip on every checkout, and a connection that died with its server
        # fails its one statement (503) and is dropped, the pool with it. No automatic prepared statements:
        # psycopg drops them at every ROLLBACK (which ends each pooled read) in one more round trip.
        return create_async_engine(
            url, pool_size=16, max_overflow=8, connect_args={"prepare_threshold": None}, **json
        )
    # One connection, shared in turn: SQLite has one writer anyway, and a single connection can never
    # meet SQLITE_BUSY. Nothing may hold a connection while it asks for another.
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=120, **json)
    event.listen(engine.sync_engine, "connect", _tune_sqlite)
    return engine


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000", "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def autocommitting(engine: AsyncEngine) -> AsyncEngine:
    """The same pool, for work that is one statement (a read, one INSERT): in autocommit that is a single
    round trip, with no BEGIN before it and no COMMIT or ROLLBACK after. SQLite keeps its transactions."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine
