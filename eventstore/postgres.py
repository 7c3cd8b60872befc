"""PostgreSQL: the production backend. Writers append in parallel; followers read below the oldest running
transaction of our database; the read side is upserted from JSON recordsets."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any, cast

import msgspec
import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from eventstore.base import LOG_START, HorizonHolder, LogPosition, ReadHorizon, RecordedEvent
from eventstore.database import JSON_OPTIONS, json_text, replacing, unavailable_as_store_error
from eventstore.signal import AppendSignal
from eventstore.sql import VERSION_KEY, SqlEventStore, c
from eventstore.tables import Xid8


class PostgresBackend:
    name = "postgresql"
    shared = True
    batch_alter = False

    def driver_url(self, url: URL, *, asynchronous: bool = True) -> URL:
        return url.set(drivername="postgresql+psycopg")

    def database_file(self, database_url: str) -> str | None:
        return None

    def open(self, database_url: str, *, prepared_statements: bool = True) -> AsyncEngine:
        # No pre-ping: it is a round trip on every checkout, and a connection that died with its server
        # fails its one statement (503) and is dropped, the pool with it. psycopg prepares a statement run
        # five times on a connection (PostgreSQL then plans it once: a sixth less of its CPU per order); a
        # ROLLBACK makes psycopg drop them all, which is why reads run in autocommit (`one_statement`),
        # where no ROLLBACK ends them. No overflow: a burst waits a moment for a pooled connection rather
        # than have PostgreSQL start (and then end) a backend process for each request past the pool, which
        # costs more than the request; and six processes stay within PostgreSQL's default 100 connections.
        # Nothing else of a session is relied on (no SET, LISTEN, advisory lock, temporary table or
        # server-side cursor; isolation is per transaction), so behind PgBouncer in transaction mode only
        # the prepared statements must go: they live on the server connection, which the next transaction
        # may not get (DATABASE_PREPARED_STATEMENTS=false).
        connect_args: dict[str, Any] = {} if prepared_statements else {"prepare_threshold": None}
        return create_async_engine(
            self.driver_url(sa.make_url(database_url)),
            pool_size=16,
            max_overflow=0,
            connect_args=connect_args,
            **JSON_OPTIONS,
        )

    def one_statement(self, engine: AsyncEngine) -> AsyncEngine:
        # In autocommit a single statement is one round trip, with no BEGIN before it and no COMMIT or
        # ROLLBACK after.
        return engine.execution_options(isolation_level="AUTOCOMMIT")

    def event_store(self, engine: AsyncEngine, signal: AppendSignal) -> PostgresEventStore:
        return PostgresEventStore(engine, signal)

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    async def insert_rows(self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if rows:  # (as upsert does, for the same reasons)
            insert = _compiled(_recordset_insert(table), conn.dialect)
            await _execute_on_driver(conn, insert, {"rows": json_text(rows)})

    async def upsert(self, conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            # One statement with the rows as one JSON document, encoded in one call: thousands of rows (a
            # rebuild's batch) without a bind parameter per value for SQLAlchemy and the driver to handle
            # one by one. JSON has no NaN or infinity; a view's numbers are finite. Compiled once per table
            # and run on psycopg: building it each time took half of a live projector's CPU.
            upsert = _compiled(_recordset_upsert(table), conn.dialect)
            await _execute_on_driver(conn, upsert, {"rows": json_text(rows)})

    async def execute_static(
        self, conn: AsyncConnection, statement: sa.UpdateBase, params: dict[str, Any]
    ) -> int:
        # Compiled once, run on psycopg: no statement cache key to compute, no execution context or result.
        return (await _execute_on_driver(conn, _compiled(statement, conn.dialect), params)).rowcount

    def one_of(self, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
        # One array parameter, where IN's list is expanded into a parameter per item at every execution
        # (SQLAlchemy rewrites the compiled statement for it: about 8% of a live projector's CPU).
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))

    async def upsert_structs(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[msgspec.Struct]
    ) -> None:
        if rows:  # (as upsert does), the structs encoded as they are: no dict built for each row
            upsert = _compiled(_recordset_upsert(table, struct=type(rows[0])), conn.dialect)
            await _execute_on_driver(conn, upsert, {"rows": json_text(rows)})

    async def upsert_at_once(
        self, conn: AsyncConnection, writes: Sequence[tuple[sa.Table, list[dict[str, Any]]]]
    ) -> None:
        upserts = _compiled(_recordset_upserts(tuple(table for table, _ in writes)), conn.dialect)
        params = {f"rows_{n}": json_text(rows) for n, (_, rows) in enumerate(writes)}
        await _execute_on_driver(conn, upserts, params)

    def seconds_between(self, later: sa.ColumnElement[Any], earlier: sa.ColumnElement[Any]) -> Any:
        return sa.extract("epoch", later - earlier)

    async def copy_table(self, conn: AsyncConnection, source: sa.Table, copy: str) -> None:
        key = ", ".join(column.name for column in source.primary_key)
        await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {copy}")
        await conn.exec_driver_sql(
            f"CREATE TABLE {copy} (LIKE {source.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        await conn.exec_driver_sql(f"ALTER TABLE {copy} ADD CONSTRAINT {copy}_pkey PRIMARY KEY ({key})")

    async def copy_indexes(self, conn: AsyncConnection, source: str, copy: str, suffix: str) -> None:
        for name, definition in (await _indexes(conn, source)).items():
            copy_definition = re.sub(rf" ON (\S+\.)?{source} ", rf" ON \g<1>{copy} ", definition)
            await conn.exec_driver_sql(copy_definition.replace(f" {name} ON ", f" {name}{suffix} ON ", 1))

    async def replace_table(self, conn: AsyncConnection, table: str, copy: str, suffix: str) -> None:
        names = list(await _indexes(conn, table))
        await conn.exec_driver_sql(f"DROP TABLE {table}")
        await conn.exec_driver_sql(f"ALTER TABLE {copy} RENAME TO {table}")
        await conn.exec_driver_sql(f"ALTER TABLE {table} RENAME CONSTRAINT {copy}_pkey TO {table}_pkey")
        for name in names:
            await conn.exec_driver_sql(f"ALTER INDEX {name}{suffix} RENAME TO {name}")


POSTGRES = PostgresBackend()


async def _indexes(conn: AsyncConnection, table: str) -> dict[str, str]:
    """The definitions of `table`'s indexes but its primary key's, by name."""
    rows = await conn.exec_driver_sql(
        "SELECT indexname, indexdef FROM pg_indexes"
        f" WHERE schemaname = current_schema() AND tablename = '{table}' AND indexname <> '{table}_pkey'"
    )
    return dict(cast("list[tuple[str, str]]", rows.all()))


# Built once per table: building them for each write took half of the market's writing CPU.
@functools.cache
def _recordset_insert(
    table: sa.Table, rows_name: str = "rows", struct: type[msgspec.Struct] | None = None
) -> Any:
    """An INSERT of the rows of one JSON array, bound as `rows_name`: objects keyed by column name, or
    `struct`s as msgspec encodes them (each column under the encoded name of the field of its name)."""
    renamed = {} if struct is None else {f.name: f.encode_name for f in msgspec.structs.fields(struct)}
    columns = [sa.column(renamed.get(column.name, column.name), column.type) for column in table.columns]
    rows = sa.func.json_to_recordset(sa.bindparam(rows_name, type_=sa.JSON)).table_valued(*columns)
    select = sa.select(rows.render_derived(with_types=True))
    return postgresql.insert(table).from_select(list(table.columns), select)


@functools.cache
def _recordset_upsert(
    table: sa.Table, rows_name: str = "rows", struct: type[msgspec.Struct] | None = None
) -> Any:
    return replacing(_recordset_insert(table, rows_name, struct), table)


@functools.cache
def _recordset_upserts(tables: tuple[sa.Table, ...]) -> Any:
    """The upserts of `tables` as one statement, the rows of the nth bound as `rows_<n>`: all but the last
    are data-modifying CTEs of the last (PostgreSQL runs each of them, whether or not it is read)."""
    *before, last = [_recordset_upsert(table, f"rows_{n}") for n, table in enumerate(tables)]
    for n, upsert in enumerate(before):
        last = last.add_cte(upsert.cte(f"upsert_{n}"))
    return last


@functools.cache
def _compiled(statement: sa.UpdateBase, dialect: sa.Dialect) -> str:
    """`statement` as the SQL psycopg runs, its bind parameters as `%(name)s`."""
    return str(statement.compile(dialect=dialect))


class PostgresEventStore(SqlEventStore):
    """Writers append in parallel; followers read only below the oldest running transaction of our database.

    Positions come from a sequence before commit, so concurrent transactions become visible out of
    position order. Each row keeps its transaction id; a follower reads in (transaction id, position)
    order and only rows of transactions older than the read's visible horizon (`VISIBLE_HORIZON`): all of
    those have ended, so nothing can later appear behind the follower's cursor. Transactions of other
    databases on the same server cannot append to our log, so they do not hold the horizon back.
    """

    def __init__(self, engine: AsyncEngine, signal: AppendSignal) -> None:
        super().__init__(engine, signal, one_statement=POSTGRES.one_statement(engine))

    @unavailable_as_store_error
    async def read_all_in(
        self, conn: AsyncConnection, after: LogPosition, limit: int, *, metadata: bool = True
    ) -> list[RecordedEvent]:
        # In a transaction, PostgreSQL answers `pg_stat_activity` from a copy taken at its first use; the
        # horizon must look at the backends after its statement's snapshot was taken (see VISIBLE_HORIZON).
        # (`read_all` needs no such statement: its read is a transaction of its own, in autocommit.)
        await conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        return await super().read_all_in(conn, after, limit, metadata=metadata)

    async def _read_horizon(self) -> ReadHorizon:
        async with self.one_statement.connect() as conn:
            held_back, pid, age_s, state = (await conn.execute(sa.text(_HORIZON_REPORT))).one()
        holder = None if pid is None else HorizonHolder(pid=pid, transaction_age_s=age_s, state=state)
        return ReadHorizon(held_back_events=held_back, holder=holder)

    async def _insert(self, rows: list[dict[str, Any]]) -> Sequence[tuple[int, int]]:
        """One INSERT in autocommit, straight on the pooled connection's psycopg connection.

        A single statement is a transaction of its own, so it takes one round trip where `engine.begin()`
        takes three (BEGIN, INSERT, COMMIT), and no SQLAlchemy compiling or result processing: together
        about 45% less client CPU per append. The transaction id still comes from the column's default,
        `pg_current_xact_id()`.
        """
        statement = _insert_statement(len(rows))
        params = [value for row in rows for value in _insert_values(row)]
        async with self.one_statement.connect() as conn:
            returned = await _fetch_on_driver(conn, statement, params)
        return [(position, transaction_id) for _, position, transaction_id in sorted(returned)]

    def _is_version_clash(self, error: IntegrityError) -> bool:
        diag = getattr(error.orig, "diag", None)
        return diag is not None and bool(diag.constraint_name == VERSION_KEY)

    def _transaction_id(self) -> sa.ColumnElement[int]:
        return sa.cast(sa.cast(c.transaction_id, sa.Text), sa.BigInteger).label("transaction_id")

    def _recorded_at(self) -> sa.ColumnElement[Any]:
        # The time since the epoch, an interval: psycopg loads a timestamptz in the session's time zone,
        # converting each by the zone's rules, where an interval is a timedelta at once (a third of the
        # CPU of loading a log's rows, with the conversion back to UTC). Exact: the difference of two
        # timestamptz is whole microseconds, in days of 24 hours. Read in binary (`_follow`, `_stream`):
        # psycopg parses intervals as text only in the default IntervalStyle.
        return sa.literal_column(f"{c.recorded_at} - '1970-01-01Z'::timestamptz", sa.Interval).label(
            "recorded_at"
        )

    def _past(self, after: LogPosition) -> sa.ColumnElement[bool]:
        transaction_id, position = _follow_params(after)
        cursor_xid = sa.cast(sa.bindparam("after_transaction_id", transaction_id, type_=sa.Text), Xid8())
        cursor = sa.tuple_(cursor_xid, sa.bindparam("after_position", position, type_=sa.BigInteger))
        return sa.tuple_(c.transaction_id, c.position) > cursor

    def _after(self, after: LogPosition) -> sa.ColumnElement[bool]:
        return sa.and_(self._past(after), c.transaction_id < sa.literal_column(VISIBLE_HORIZON, Xid8()))

    def _log_order(self) -> tuple[sa.ColumnElement[Any], ...]:
        return (c.transaction_id, c.position)

    async def _follow(
        self, conn: AsyncConnection, after: LogPosition, limit: int, metadata: bool
    ) -> Sequence[Any]:
        """Straight from psycopg, as followers read all the time: SQLAlchemy's Row objects and result
        processing cost about as much as decoding the events (15% of a rebuild's client CPU), and for a live
        follower's few events its statement cache and execution take half of each read's CPU."""
        transaction_id, position = _follow_params(after)
        params = {"after_transaction_id": transaction_id, "after_position": position, "limit": limit}
        return await _fetch_on_driver(conn, self._follow_sql[metadata], params, binary=True)

    async def _stream(self, conn: AsyncConnection, order_id: str, after_version: int) -> Sequence[Any]:
        """Straight from psycopg too: each order's run starts by reading its stream."""
        params = {"order_id": order_id, "after_version": after_version}
        return await _fetch_on_driver(conn, self._stream_sql, params, binary=True)

    @functools.cached_property
    def _stream_sql(self) -> str:
        return str(self._stream_query().compile(dialect=self.engine.dialect))

    @functools.cached_property
    def _follow_sql(self) -> dict[bool, str]:
        """`_follow_query` compiled once, with the metadata and without (by `metadata`); its values are the
        bind parameters `_follow` passes."""
        return {
            metadata: str(self._follow_query(LOG_START, 0, metadata).compile(dialect=self.engine.dialect))
            for metadata in (True, False)
        }


# The running transactions of our database, as the statement's snapshot saw them: the snapshot's in-progress
# ids less those of backends connected to other databases. A transaction of another database can never
# append to our log, so it need not hold our followers back (`pg_snapshot_xmin` alone is the whole server's).
# Why no event is ever passed over: `pg_stat_activity` is read after the statement's snapshot was taken
# (read_all_in makes sure of it in a transaction), so an id left in the list either belongs to a running
# transaction of ours or to one that ended since (harmless: the horizon is only held back a little longer);
# ids are never reused, and one assigned after the snapshot is at or past its `xmax`, so it is never in
# `pg_snapshot_xip` to be mistaken for another database's. Without the privilege to see other users'
# `backend_xid`, nothing is taken off and the horizon is the server's, as before.
# (`pg_stat_get_activity(NULL)` is the function behind the `pg_stat_activity` view: planning the view's joins
# made a follower's read at the head of the log about 3 times slower than with the function alone.)
_RUNNING_IN_OUR_DATABASE = """
    SELECT xid FROM pg_snapshot_xip(pg_current_snapshot()) AS xid
    WHERE xid::xid NOT IN (
        SELECT backend_xid FROM pg_stat_get_activity(NULL)
        WHERE backend_xid IS NOT NULL
          AND datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())
    )"""
# The oldest of them, or the snapshot's xmax when none runs: every event of a transaction below it has ended.
# On a streaming replica (DATABASE_READ_URL) the snapshot's list is always empty, whatever runs on the
# primary (during recovery PostgreSQL keeps the running ids among the snapshot's subtransactions, which
# `pg_current_snapshot` does not return), so there the horizon is the snapshot's xmin: the oldest transaction
# of the whole primary that the replayed WAL shows running (the replica has no backend of the primary's to
# tell our database's apart). Read from xmax there, a follower would pass over a transaction still running.
VISIBLE_HORIZON = (
    "(SELECT CASE WHEN pg_is_in_recovery() THEN pg_snapshot_xmin(pg_current_snapshot())"
    " ELSE coalesce(min(xid), pg_snapshot_xmax(pg_current_snapshot())) END"
    f" FROM ({_RUNNING_IN_OUR_DATABASE}) AS running)"
)
# Committed events at or past the horizon (stored, but not yet readable by followers), and the transaction
# holding the horizon: its process id, how long it has been open, its state.
_HORIZON_REPORT = f"""
    WITH running AS ({_RUNNING_IN_OUR_DATABASE}),
    holder AS (
        SELECT pid, extract(epoch FROM clock_timestamp() - xact_start)::float8 AS age_s, state
        FROM pg_stat_activity
        WHERE datname = current_database() AND backend_xid = (SELECT min(xid) FROM running)::xid
    )
    SELECT (SELECT count(*) FROM order_events WHERE transaction_id >= {VISIBLE_HORIZON}),
           holder.pid, holder.age_s, holder.state
    FROM (SELECT 1) AS one LEFT JOIN holder ON true
    ORDER BY holder.age_s DESC NULLS LAST LIMIT 1"""  # a parallel query's workers share their leader's xid


# What a connection is in when a statement broke it or was cancelled midway: not fit to go back to the pool.
_UNFIT = (psycopg.pq.TransactionStatus.ACTIVE, psycopg.pq.TransactionStatus.UNKNOWN)


async def _fetch_on_driver(
    conn: AsyncConnection, sql: str, params: Any, *, binary: bool = False
) -> list[Any]:
    """The rows of `sql`, run straight on the pooled connection's psycopg connection (in PostgreSQL's binary
    format if `binary`)."""
    return await (await _execute_on_driver(conn, sql, params, binary=binary)).fetchall()


async def _execute_on_driver(
    conn: AsyncConnection, sql: str, params: Any, *, binary: bool = False
) -> psycopg.AsyncCursor[Any]:
    """`sql` run straight on the pooled connection's psycopg connection, in its transaction if it is in one;
    the cursor, its rows fetched (psycopg's client-side cursor holds them all)."""
    driver = cast(psycopg.AsyncConnection[Any], (await conn.get_raw_connection()).driver_connection)
    try:
        return await driver.execute(sql, params, binary=binary)
    except psycopg.Error as error:  # raised as SQLAlchemy would: a broken connection is an OperationalError
        raise DBAPIError.instance(sql, params, error, psycopg.Error) from error
    finally:
        if driver.info.transaction_status in _UNFIT:
            await conn.invalidate()


def _follow_params(after: LogPosition) -> tuple[str, int]:
    """A follower's cursor as bound: the transaction id as text, for PostgreSQL to cast to xid8."""
    return str(after.transaction_id), after.position


_INSERTED = ("order_id", "version", "type", "data", "metadata", "recorded_at", "schema_version")
_JSON = {"data", "metadata"}  # sent as JSON text; PostgreSQL takes it as jsonb, the columns' type


@functools.cache
def _insert_statement(events: int) -> str:
    """PostgreSQL's append of `events` rows; each returns its version, to pair it with its row."""
    row = f"({', '.join(['%s'] * len(_INSERTED))})"
    return (
        f"INSERT INTO order_events ({', '.join(_INSERTED)}) VALUES {', '.join([row] * events)}"
        " RETURNING version, position, transaction_id::text::bigint"
    )


def _insert_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(msgspec.json.encode(row[key]).decode() if key in _JSON else row[key] for key in _INSERTED)
