"""Reading orders: from the `orders` read table, or from the log when the table has not caught up yet."""

from __future__ import annotations

import base64
from datetime import datetime

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.status import TERMINAL_STATUSES
from eventstore.base import EventStore, RecordedEvent
from projections.order_view import OrderView, fold
from projections.tables import orders


class OrderPage(msgspec.Struct, rename="camel"):
    orders: list[OrderView]
    next_cursor: str | None


class InvalidCursor(ValueError):
    pass


class OrderQueries:
    def __init__(self, engine: AsyncEngine, store: EventStore) -> None:
        self.engine = engine
        self.store = store

    async def get(self, order_id: str) -> OrderView | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(orders).where(orders.c.order_id == order_id))).first()
        if row is not None:
            return OrderView(**row._mapping)
        # Not projected yet (the projector runs a moment behind the POST): fold the log instead.
        return fold(await self.store.read_stream(order_id))

    async def events(self, order_id: str) -> list[RecordedEvent]:
        return await self.store.read_stream(order_id)

    async def unfinished(self, updated_before: datetime) -> list[str]:
        """Orders that have not ended and whose last event is older than `updated_before`."""
        query = sa.select(orders.c.order_id).where(
            orders.c.status.not_in([str(s) for s in TERMINAL_STATUSES]), orders.c.updated_at < updated_before
        )
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).scalars())

    async def page(self, status: str | None, limit: int, cursor: str | None) -> OrderPage:
        """Newest first; the cursor is the (created_at, order_id) of the last order of the previous page."""
        query = sa.select(orders).order_by(orders.c.created_at.desc(), orders.c.order_id.desc()).limit(limit)
        if status is not None:
            query = query.where(orders.c.status == status)
        if cursor is not None:
            created_at, order_id = decode_cursor(cursor)
            query = query.where(sa.tuple_(orders.c.created_at, orders.c.order_id) < (created_at, order_id))
        async with self.engine.connect() as conn:
            views = [OrderView(**row._mapping) for row in await conn.execute(query)]
        next_cursor = encode_cursor(views[-1]) if len(views) == limit else None
        return OrderPage(orders=views, next_cursor=next_cursor)


def encode_cursor(view: OrderView) -> str:
    raw = msgspec.json.encode([view.created_at.isoformat(), view.order_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, order_id = msgspec.json.decode(raw, type=tuple[datetime, str])
    except (ValueError, msgspec.DecodeError):
        raise InvalidCursor("cursor is not one this API returned") from None
    return created_at, order_id
