"""The event store on SQL: PostgreSQL for production, SQLite for the embedded default."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.events import Event, OrderEvent, event_type
from eventstore.base import ConcurrencyConflict, LogPosition, RecordedEvent
from eventstore.signal import AppendSignal
from eventstore.tables import Xid8, order_events
from eventstore.upcasting import upcast

log = logging.getLogger(__name__)
c = order_events.c
VERSION_KEY = "order_events_order_id_version_key"


class SqlEventStore:
    """Appends with an expected version (the unique (order_id, version) key refuses a second writer)."""

    def __init__(self, engine: AsyncEngine, signal: AppendSignal) -> None:
        self.engine = engine
        self.signal = signal
        self._columns = (
            c.order_id,
            c.version,
            c.data,
            c.schema_version,
            c.metadata,
            c.recorded_at,
            c.position,
        )

    async def append(
        self,
        order_id: str,
        events: Sequence[Event],
        expected_version: int,
        metadata: dict[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        recorded_at = datetime.now(UTC)
        rows = [
            {
                "order_id": order_id,
                "version": expected_version + offset,
                "type": event_type(event),
                "data": msgspec.to_builtins(event),
                "metadata": metadata or {},
                "recorded_at": recorded_at,
                "schema_version": event.SCHEMA_VERSION,
                **self._insert_defaults(),
            }
            for offset, event in enumerate(events, start=1)
        ]
        statement = sa.insert(order_events).returning(
            c.position, self._commit_id(), sort_by_parameter_order=True
        )
        try:
            async with self.engine.begin() as conn:
                returned = (await conn.execute(statement, rows)).all()
        except IntegrityError as error:
            if _is_version_clash(error):
                raise ConcurrencyConflict(order_id, expected_version) from None
            raise
        await self.signal.publish(order_id)
        return [
            RecordedEvent(
                order_id=order_id,
                version=row["version"],
                event=event,
                recorded_at=recorded_at,
                log_position=LogPosition(commit_id, position),
                metadata=row["metadata"],
            )
            for row, event, (position, commit_id) in zip(rows, events, returned, strict=True)
        ]

    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        query = (
            sa.select(*self._columns, self._commit_id())
            .where(c.order_id == order_id, c.version > after_version)
            .order_by(c.version)
        )
        async with self.engine.connect() as conn:
            return [_recorded(row) for row in await conn.execute(query)]

    async def read_all(self, after: LogPosition, limit: int) -> list[RecordedEvent]:
        async with self.engine.connect() as conn:
            return await self.read_all_in(conn, after, limit)

    async def read_all_in(self, conn: AsyncConnection, after: LogPosition, limit: int) -> list[RecordedEvent]:
        """`read_all` inside the caller's transaction (a projection rebuild's final catch-up)."""
        query = (
            sa.select(*self._columns, self._commit_id())
            .where(self._after(after))
            .order_by(*self._log_order())
            .limit(limit)
        )
        return [_recorded(row) for row in await conn.execute(query)]

    async def count_after(self, after: LogPosition) -> int:
        """How many events a follower at `after` has still to read (for progress and lag)."""
        query = sa.select(sa.func.count()).select_from(order_events).where(self._after(after))
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar_one()

    async def log_position(self, position: int) -> LogPosition | None:
        query = sa.select(self._commit_id(), c.position).where(c.position == position)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return LogPosition(row.commit_id, row.position) if row else None

    # -- what differs between databases ---------------------------------------------------------------

    def _insert_defaults(self) -> dict[str, Any]:
        return {"transaction_id": 0}

    def _commit_id(self) -> sa.ColumnElement[int]:
        return sa.literal(0, sa.BigInteger).label("commit_id")

    def _after(self, after: LogPosition) -> sa.ColumnElement[bool]:
        return c.position > after.position

    def _log_order(self) -> tuple[sa.ColumnElement[Any], ...]:
        return (c.position,)


class PostgresEventStore(SqlEventStore):
    """Writers append in parallel; followers read only below the oldest running transaction.

    Positions come from a sequence before commit, so concurrent transactions become visible out of
    position order. Each row keeps its transaction id; a follower reads in (transaction id, position)
    order and only rows of transactions older than `pg_snapshot_xmin(pg_current_snapshot())`. All of
    those have ended, so nothing can later appear behind the follower's cursor.
    """

    def _insert_defaults(self) -> dict[str, Any]:
        return {}

    def _commit_id(self) -> sa.ColumnElement[int]:
        return sa.cast(sa.cast(c.transaction_id, sa.Text), sa.BigInteger).label("commit_id")

    def _after(self, after: LogPosition) -> sa.ColumnElement[bool]:
        cursor_xid = sa.cast(sa.cast(str(after.commit_id), sa.Text), Xid8())
        visible_horizon = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot(), type_=Xid8())
        return sa.and_(
            sa.tuple_(c.transaction_id, c.position) > sa.tuple_(cursor_xid, after.position),
            c.transaction_id < visible_horizon,
        )

    def _log_order(self) -> tuple[sa.ColumnElement[Any], ...]:
        return (c.transaction_id, c.position)


def _recorded(row: sa.Row[Any]) -> RecordedEvent:
    return RecordedEvent(
        order_id=row.order_id,
        version=row.version,
        event=msgspec.convert(upcast(row.data, row.schema_version), OrderEvent),
        recorded_at=row.recorded_at,
        log_position=LogPosition(row.commit_id, row.position),
        metadata=row.metadata,
    )


def _is_version_clash(error: IntegrityError) -> bool:
    diag = getattr(error.orig, "diag", None)
    if diag is not None:  # psycopg
        return diag.constraint_name == VERSION_KEY
    return "order_events.order_id, order_events.version" in str(error.orig)
