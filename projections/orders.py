"""The `orders` read table: one row per order, the fold of its events."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from eventstore.backend import Backend
from eventstore.base import LogPosition, RecordedEvent
from eventstore.database import unavailable_as_store_error
from projections.checkpoints import advance_checkpoint, read_checkpoint
from projections.order_view import OrderView, evolve
from projections.tables import orders


class ProjectionGap(Exception):
    """An event arrived out of version order: applying it would corrupt the row."""


class OrdersProjection:
    """Keeps `table` (the live `orders`, or a rebuild's shadow) and its checkpoint `name` in step."""

    def __init__(
        self, engine: AsyncEngine, backend: Backend, table: sa.Table = orders, name: str = "orders"
    ) -> None:
        self.engine = engine
        self.backend = backend
        self.table = table
        self.name = name
        # Built once: a live projector reads rows with every batch.
        self._rows_of = sa.select(table).where(backend.one_of(table.c.order_id, "ids"))

    @unavailable_as_store_error
    async def position(self) -> LogPosition:
        # In autocommit: no ROLLBACK after the read, which would drop the connection's prepared statements.
        async with self.backend.one_statement(self.engine).connect() as conn:
            return await read_checkpoint(conn, self.name)

    @unavailable_as_store_error
    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        """Apply `batch`, which follows `after`; False if another projector moved the checkpoint first."""
        async with self.engine.begin() as conn:
            return await self.apply_in(conn, after, batch)

    async def apply_in(self, conn: AsyncConnection, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        """`apply` inside the caller's transaction."""
        to = batch[-1].log_position if batch else after
        if not await advance_checkpoint(conn, self.backend, self.name, after, to):
            return False
        first_versions: dict[str, int] = {}
        for recorded in batch:
            first_versions.setdefault(recorded.order_id, recorded.version)
        # Only orders that began before the batch have a row to read: in a rebuild, where most orders begin
        # and end within one batch, that is a few of them.
        ids = [order_id for order_id, version in first_versions.items() if version > 1]
        views: dict[str, OrderView] = {}
        if ids:
            rows = await conn.execute(self._rows_of, {"ids": ids})
            views = {row.order_id: OrderView(**row._mapping) for row in rows}
        for recorded in batch:
            view = views.get(recorded.order_id)
            expected = (view.version if view else 0) + 1
            if recorded.version != expected:
                raise ProjectionGap(
                    f"order {recorded.order_id}: got version {recorded.version}, expected {expected}"
                )
            views[recorded.order_id] = evolve(view, recorded)
        await self.backend.upsert_structs(conn, self.table, list(views.values()))
        return True
