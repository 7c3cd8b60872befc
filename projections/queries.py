"""Reading orders: one order from the log (current), lists and figures from the `orders` read table (a
moment behind the log; and behind the primary too when read from a replica, DATABASE_READ_URL)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.routing import execution_price
from domain.status import TERMINAL_STATUSES, OrderStatus
from domain.tokens import token_of
from domain.transitions import status_after
from eventstore.backend import Backend
from eventstore.base import EventStore, RecordedEvent
from eventstore.database import unavailable_as_store_error
from eventstore.replica import Replica
from projections.order_view import OrderView, fold
from projections.tables import orders


class OrderPage(msgspec.Struct, rename="camel"):
    orders: list[OrderView]
    next_cursor: str | None


class OrderFilters(msgspec.Struct, frozen=True, kw_only=True):
    status: str | None = None
    token_in: str | None = None
    token_out: str | None = None
    venue: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def conditions(self) -> list[sa.ColumnElement[bool]]:
        c = orders.c
        conditions = [
            column == value
            for column, value in (
                (c.status, self.status),
                (c.token_in, self.token_in),
                (c.token_out, self.token_out),
                (c.selected_venue, self.venue),
            )
            if value is not None
        ]
        if self.created_after is not None:
            conditions.append(c.created_at > self.created_after)
        if self.created_before is not None:
            conditions.append(c.created_at < self.created_before)
        return conditions


class PairStats(msgspec.Struct, rename="camel"):
    pair: str  # tokenIn/tokenOut
    confirmed: int
    # All confirmed orders' amounts out over their amounts in: whole tokenOut per whole tokenIn
    average_execution_price: Decimal


class OrderStats(msgspec.Struct, rename="camel"):
    total: int
    by_status: dict[str, int]  # waiting, pending, ..., confirmed, failed, cancelled, expired
    by_order_type: dict[str, int]  # market, limit, sniper
    confirmed_by_venue: dict[str, int]
    pairs: list[PairStats]
    success_rate: float | None  # confirmed / (confirmed + failed); None before any order ended
    orders_retried: int
    retries: int


class InvalidCursor(ValueError):
    pass


T = TypeVar("T")


class OrderQueries:
    """Every method raises StoreUnavailable, never a driver's error, when the database cannot be reached.

    With a `replica`, lists and figures (`page`, `stats`, `execution_latencies`) are read there (from the
    primary while it cannot be reached); one order (`get`, `events`, `has_ended`) and the recovery sweep's
    `unfinished` always from the primary, which they must see as it is now."""

    def __init__(
        self, engine: AsyncEngine, store: EventStore, backend: Backend, replica: Replica | None = None
    ) -> None:
        self.engine = backend.one_statement(engine)  # every query is one statement
        self.store = store
        self.backend = backend
        self._replica = (replica, backend.one_statement(replica.engine)) if replica is not None else None

    async def _behind(self, query: Callable[[AsyncEngine], Awaitable[T]]) -> T:
        """`query` run where reads that may be a moment behind the primary go: the replica if there is one."""
        if self._replica is None:
            return await query(self.engine)
        replica, replica_engine = self._replica
        return await replica.read(lambda: query(replica_engine), lambda: query(self.engine))

    async def get(self, order_id: str) -> OrderView | None:
        """The order as its events in the log have it now (None if there are none): never older than an
        event a client was already sent or answered with, which the read table, a moment behind, can be."""
        return fold(await self.store.read_stream(order_id))

    async def events(self, order_id: str) -> list[RecordedEvent]:
        return await self.store.read_stream(order_id)

    async def has_ended(self, order_id: str) -> bool:
        """Whether the log (not the read table, which may lag) holds the order's terminal event."""
        stream = await self.store.read_stream(order_id)
        return bool(stream) and status_after(stream[-1].event).is_terminal

    async def execution_latencies(self, bounds_s: list[float]) -> tuple[list[int], float, int]:
        """For ended market orders, submit-to-end times: how many took at most each bound, their sum and
        count (a limit order's time is mostly its wait for the price, which says nothing of execution)."""
        return await self._behind(lambda engine: self._execution_latencies(engine, bounds_s))

    @unavailable_as_store_error
    async def _execution_latencies(
        self, engine: AsyncEngine, bounds_s: list[float]
    ) -> tuple[list[int], float, int]:
        seconds = self.backend.seconds_between(orders.c.updated_at, orders.c.created_at)
        ended = orders.c.status.in_([str(s) for s in TERMINAL_STATUSES]) & (orders.c.order_type == "market")
        columns = [sa.func.count().filter(seconds <= bound) for bound in bounds_s]
        query = sa.select(*columns, sa.func.coalesce(sa.func.sum(seconds), 0.0), sa.func.count()).where(ended)
        async with engine.connect() as conn:
            *within, total_s, count = (await conn.execute(query)).one()
        return list(within), float(total_s), count

    @unavailable_as_store_error
    async def unfinished(self, updated_before: datetime) -> list[str]:
        """Orders in the workers' hands (not ended, not waiting for a trigger) whose last event is older
        than `updated_before`."""
        not_executing = [str(s) for s in (*TERMINAL_STATUSES, OrderStatus.WAITING)]
        query = sa.select(orders.c.order_id).where(
            orders.c.status.not_in(not_executing), orders.c.updated_at < updated_before
        )
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def page(self, filters: OrderFilters, limit: int, cursor: str | None) -> OrderPage:
        """Newest first; the cursor is the (created_at, order_id) of the last order of the previous page, so
        orders created meanwhile (always newer) never shift a page: none is shown twice or skipped."""
        after = decode_cursor(cursor) if cursor is not None else None
        return await self._behind(lambda engine: self._page(engine, filters, limit, after))

    @unavailable_as_store_error
    async def _page(
        self, engine: AsyncEngine, filters: OrderFilters, limit: int, after: tuple[datetime, str] | None
    ) -> OrderPage:
        query = (
            sa.select(orders)
            .where(*filters.conditions())
            .order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
            .limit(limit + 1)  # one more than asked: is there a next page at all?
        )
        if after is not None:
            query = query.where(sa.tuple_(orders.c.created_at, orders.c.order_id) < after)
        async with engine.connect() as conn:
            views = [OrderView(**row._mapping) for row in await conn.execute(query)]
        next_cursor = encode_cursor(views[limit - 1]) if len(views) > limit else None
        return OrderPage(orders=views[:limit], next_cursor=next_cursor)

    async def stats(self) -> OrderStats:
        return await self._behind(self._stats)

    @unavailable_as_store_error
    async def _stats(self, engine: AsyncEngine) -> OrderStats:
        confirmed = orders.c.status == "confirmed"
        async with engine.connect() as conn:
            by_status = dict(
                (
                    await conn.execute(sa.select(orders.c.status, sa.func.count()).group_by(orders.c.status))
                ).all()
            )
            by_venue = dict(
                (
                    await conn.execute(
                        sa.select(orders.c.selected_venue, sa.func.count())
                        .where(confirmed)
                        .group_by(orders.c.selected_venue)
                    )
                ).all()
            )
            pairs = (
                await conn.execute(
                    sa.select(
                        orders.c.token_in,
                        orders.c.token_out,
                        # the same for every order of the pair: set for a launched tokenOut only
                        sa.func.max(orders.c.token_out_decimals),
                        sa.func.count(),
                        sa.func.sum(orders.c.amount_in_raw),
                        sa.func.sum(orders.c.amount_out_raw),
                    )
                    .where(confirmed)
                    .group_by(orders.c.token_in, orders.c.token_out)
                    .order_by(orders.c.token_in, orders.c.token_out)
                )
            ).all()
            by_type = dict(
                (
                    await conn.execute(
                        sa.select(orders.c.order_type, sa.func.count()).group_by(orders.c.order_type)
                    )
                ).all()
            )
            retried, retries = (
                await conn.execute(
                    sa.select(
                        sa.func.count().filter(orders.c.attempts > 1),
                        sa.func.coalesce(sa.func.sum(orders.c.attempts - 1).filter(orders.c.attempts > 1), 0),
                    )
                )
            ).one()
        ended = by_status.get("confirmed", 0) + by_status.get("failed", 0)
        return OrderStats(
            total=sum(by_status.values()),
            by_status=by_status,
            confirmed_by_venue=by_venue,
            by_order_type=by_type,
            pairs=[
                PairStats(
                    f"{i}/{o}",
                    count,
                    execution_price(int(raw_in), token_of(i), int(raw_out), token_of(o, decimals)),
                )
                for i, o, decimals, count, raw_in, raw_out in pairs
            ],
            success_rate=by_status.get("confirmed", 0) / ended if ended else None,
            orders_retried=retried,
            retries=int(retries),
        )


# A cursor is the last order's creation time (microseconds since 1970, UTC) and its id (32 hex digits),
# e.g. `1764547200123456-6f1c0a523c1e4f7e9a572b8f0d4b8c11`. Every string of this shape is a valid position
# in the list (orders older than that moment and id), so the OpenAPI schema can state it exactly.
CURSOR_PATTERN = r"^[0-9]{1,16}-[0-9a-f]{32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def encode_cursor(view: OrderView) -> str:
    return f"{(view.created_at - _EPOCH) // _MICROSECOND}-{uuid.UUID(view.order_id).hex}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    if re.fullmatch(CURSOR_PATTERN, cursor) is None:
        raise InvalidCursor("cursor is not one this API returned")
    micros, order_hex = cursor.split("-")
    return _EPOCH + int(micros) * _MICROSECOND, str(uuid.UUID(order_hex))
