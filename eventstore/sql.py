"""The event store on SQL: what PostgreSQL (`eventstore/postgres.py`) and SQLite (`eventstore/sqlite.py`)
share. Each backend's store says how it inserts and in which order followers read."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.events import EVENT_TYPES, Event, OrderEvent, event_type
from eventstore.base import ConcurrencyConflict, LogPosition, ReadHorizon, RecordedEvent
from eventstore.database import unavailable_as_store_error
from eventstore.signal import AppendSignal
from eventstore.tables import order_events
from eventstore.upcasting import OrderTokens, needs_order_tokens, upcast

c = order_events.c
VERSION_KEY = "order_events_order_id_version_key"


class SqlEventStore(abc.ABC):
    """Appends with an expected version (the unique (order_id, version) key refuses a second writer).

    Every method raises StoreUnavailable, never a driver's error, when the database cannot be reached."""

    def __init__(self, engine: AsyncEngine, signal: AppendSignal, *, one_statement: AsyncEngine) -> None:
        self.engine = engine
        self.one_statement = one_statement  # the same pool, for reads and single appends
        self.signal = signal
        self._columns = (  # what a read selects, in the order `_recorded` unpacks it
            c.order_id,
            c.version,
            c.type,
            # JSON as text: decoded once, straight into the event's class (see `_recorded`).
            sa.cast(c.data, sa.Text).label("data"),
            c.schema_version,
            sa.cast(c.metadata, sa.Text).label("metadata"),
            self._recorded_at(),
            c.position,
        )
        # The same with NULL for the metadata, which `_recorded` reads as none.
        self._columns_without_metadata = tuple(
            sa.null().label("metadata") if column.name == "metadata" else column for column in self._columns
        )

    @unavailable_as_store_error
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
        try:
            returned = await self._insert(rows)
        except IntegrityError as error:
            if self._is_version_clash(error):
                raise ConcurrencyConflict(order_id, expected_version) from None
            raise
        await self.signal.publish(order_id)
        return [
            RecordedEvent(
                order_id=order_id,
                version=row["version"],
                event=event,
                recorded_at=recorded_at,
                log_position=LogPosition(transaction_id, position),
                metadata=row["metadata"],
            )
            for row, event, (position, transaction_id) in zip(rows, events, returned, strict=True)
        ]

    @unavailable_as_store_error
    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        async with self.one_statement.connect() as conn:
            return await self._decoded(conn, await self._stream(conn, order_id, after_version))

    @unavailable_as_store_error
    async def read_all(self, after: LogPosition, limit: int, *, metadata: bool = True) -> list[RecordedEvent]:
        """See `EventStore.read_all`; without `metadata`, each event's is left empty ({}), neither read nor
        decoded: for a reader that never looks at it (a projection rebuild; a fifth of the bytes read)."""
        async with self.one_statement.connect() as conn:
            return await self._decoded(conn, await self._follow(conn, after, limit, metadata))

    @unavailable_as_store_error
    async def read_all_in(
        self, conn: AsyncConnection, after: LogPosition, limit: int, *, metadata: bool = True
    ) -> list[RecordedEvent]:
        """`read_all` inside the caller's transaction (a projection rebuild's final catch-up)."""
        return await self._decoded(conn, await self._follow(conn, after, limit, metadata))

    def _follow_query(self, after: LogPosition, limit: int, metadata: bool = True) -> sa.Select[Any]:
        columns = self._columns if metadata else self._columns_without_metadata
        return (
            sa.select(*columns, self._transaction_id())
            .where(self._after(after))
            .order_by(*self._log_order())
            .limit(sa.bindparam("limit", limit))
        )

    async def _follow(
        self, conn: AsyncConnection, after: LogPosition, limit: int, metadata: bool
    ) -> Sequence[Any]:
        """The rows of `read_all` and `read_all_in`."""
        rows: Sequence[Any] = (await conn.execute(self._follow_query(after, limit, metadata))).all()
        return rows

    def _stream_query(self) -> sa.Select[Any]:
        """One order's events after a version; bind parameters `order_id` and `after_version`."""
        return (
            sa.select(*self._columns, self._transaction_id())
            .where(c.order_id == sa.bindparam("order_id"), c.version > sa.bindparam("after_version"))
            .order_by(c.version)
        )

    async def _stream(self, conn: AsyncConnection, order_id: str, after_version: int) -> Sequence[Any]:
        """The rows of `read_stream`."""
        params = {"order_id": order_id, "after_version": after_version}
        rows: Sequence[Any] = (await conn.execute(self._stream_query(), params)).all()
        return rows

    async def _decoded(self, conn: AsyncConnection, rows: Sequence[Any]) -> list[RecordedEvent]:
        """The events of `rows`; old shapes that need their order's tokens to be upcast get them from the
        order's first event (one more query, and only when the rows hold such events)."""
        needing = {row[0] for row in rows if needs_order_tokens(row[2], row[4])}
        if not needing:
            return [_recorded(row) for row in rows]
        query = sa.select(c.order_id, sa.cast(c.data, sa.Text), c.schema_version).where(
            c.order_id.in_(needing), c.version == 1
        )
        tokens = {
            order_id: OrderTokens.of(msgspec.json.decode(data), schema_version)
            for order_id, data, schema_version in await conn.execute(query)
        }
        return [_recorded(row, tokens.get(row[0])) for row in rows]

    @unavailable_as_store_error
    async def count_after(self, after: LogPosition) -> int:
        query = sa.select(sa.func.count()).select_from(order_events).where(self._past(after))
        async with self.one_statement.connect() as conn:
            return (await conn.execute(query)).scalar_one()

    @unavailable_as_store_error
    async def read_horizon(self) -> ReadHorizon:
        return await self._read_horizon()

    @unavailable_as_store_error
    async def log_position(self, position: int) -> LogPosition | None:
        query = sa.select(self._transaction_id(), c.position).where(c.position == position)
        async with self.one_statement.connect() as conn:
            row = (await conn.execute(query)).first()
        return LogPosition(row.transaction_id, row.position) if row else None

    @unavailable_as_store_error
    async def ping(self) -> None:
        async with self.one_statement.connect() as conn:
            await conn.execute(sa.select(1))

    # -- what each backend says for itself -------------------------------------------------------------

    @abc.abstractmethod
    async def _read_horizon(self) -> ReadHorizon:
        """See `EventStore.read_horizon`."""

    @abc.abstractmethod
    async def _insert(self, rows: list[dict[str, Any]]) -> Sequence[tuple[int, int]]:
        """Stores `rows` in one transaction; returns their (position, transaction id), in the rows' order."""

    @abc.abstractmethod
    def _is_version_clash(self, error: IntegrityError) -> bool:
        """Whether `error` is the unique (order_id, version) key refusing a row (VERSION_KEY)."""

    def _recorded_at(self) -> sa.ColumnElement[Any]:
        """`recorded_at` as a read selects it, labelled so: a datetime in UTC (the column's type reads it
        back so), or the time since the epoch, a timedelta (see `_recorded`)."""
        return c.recorded_at

    def _insert_defaults(self) -> dict[str, Any]:
        """Column values the database does not fill in itself."""
        return {}

    @abc.abstractmethod
    def _transaction_id(self) -> sa.ColumnElement[int]:
        """The appending transaction's id of each row, as an integer labelled `transaction_id`."""

    @abc.abstractmethod
    def _past(self, after: LogPosition) -> sa.ColumnElement[bool]:
        """The events after `after` in log order, visible to followers or not."""

    @abc.abstractmethod
    def _after(self, after: LogPosition) -> sa.ColumnElement[bool]:
        """The events after `after` that a follower may read now."""

    @abc.abstractmethod
    def _log_order(self) -> tuple[sa.ColumnElement[Any], ...]:
        """The order followers read the log in."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Built once: decoding into the union needs a decoder, which `msgspec.convert(..., OrderEvent)` would build
# again on every call (seven times the cost of the decoding itself).
_EVENT: msgspec.json.Decoder[Event] = msgspec.json.Decoder(OrderEvent)


def _recorded(row: Sequence[Any], order_tokens: OrderTokens | None = None) -> RecordedEvent:
    """An event from a row of `_columns` and the transaction id (unpacked: a third cheaper than by name)."""
    order_id, version, type_name, data, schema_version, metadata, recorded_at, position, transaction_id = row
    return RecordedEvent(
        order_id=order_id,
        version=version,
        event=_event(type_name, data, schema_version, order_tokens),
        recorded_at=recorded_at if isinstance(recorded_at, datetime) else _EPOCH + recorded_at,
        log_position=LogPosition(transaction_id, position),
        metadata={} if metadata is None else msgspec.json.decode(metadata),
    )


def _event(type_name: str, data: str, schema_version: int, order_tokens: OrderTokens | None) -> Event:
    event_class = EVENT_TYPES[type_name]
    if schema_version < event_class.SCHEMA_VERSION:  # an older shape: brought up to date as builtins first
        current = upcast(msgspec.json.decode(data), schema_version, order_tokens)
        upcasted: Event = msgspec.convert(current, event_class, strict=False)
        return upcasted
    return _EVENT.decode(data)
