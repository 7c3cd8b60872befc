"""Rebuilding the `orders` read table from the log without taking it away from readers.

The rebuild projects the whole log into a shadow table (`orders_rebuild`, with its own checkpoint) while the
live table keeps serving and its projector keeps running. When the shadow has caught up, one transaction
holds the live checkpoint (the live projector waits on it), applies the last few events to the shadow, puts
the shadow in the live table's place under the live table's name and hands it the shadow's checkpoint. The
live projector then carries on from that checkpoint: nothing is applied twice or skipped across the swap.

An interrupted rebuild leaves only the shadow behind; the live table is untouched and the next rebuild
starts the shadow again.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from eventstore.backend import Backend
from eventstore.base import LogPosition, RecordedEvent
from eventstore.database import unavailable_as_store_error
from eventstore.sql import SqlEventStore
from projections.checkpoints import lock_checkpoint, read_checkpoint, write_checkpoint
from projections.orders import OrdersProjection
from projections.tables import orders, projection_checkpoints

LIVE, SHADOW = "orders", "orders_rebuild"
NEXT = "__next"  # suffix of the shadow's index names until the swap
# Events per batch: each costs a transaction, a checkpoint and a read of the rows it touches, so a rebuild
# takes big ones. The final catch-up holds the live projector, but it has only the last few events to apply.
BATCH_SIZE = 10_000


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """A rebuild holds tens of thousands of objects at a time (a batch being applied, the next being read),
    which the cycle collector walks again and again as they age: 40% of the rebuild's CPU. Reference
    counting frees the batches all the same; the few cycles left (about 5,000 objects over 300,000 events)
    wait for the collector to run again after the rebuild."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class OrdersRebuild:
    def __init__(
        self,
        engine: AsyncEngine,
        store: SqlEventStore,
        backend: Backend,
        batch_size: int = BATCH_SIZE,
        on_progress: Callable[[int], None] = lambda applied: None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.backend = backend
        self.shadow = OrdersProjection(
            engine, backend, orders.to_metadata(sa.MetaData(), name=SHADOW), name=SHADOW
        )

    @unavailable_as_store_error
    async def run(self) -> int:
        """Rebuild, swap, and return how many events the shadow applied."""
        with _cycle_collector_paused():
            return await self._run()

    async def _run(self) -> int:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.delete(projection_checkpoints).where(projection_checkpoints.c.name == SHADOW)
            )
            await self.backend.copy_table(conn, orders, SHADOW)
        applied = await self._catch_up()
        async with self.engine.begin() as conn:  # indexes after the bulk load: cheaper than during it
            await self.backend.copy_indexes(conn, LIVE, SHADOW, NEXT)
        applied += await self._catch_up()
        async with self.engine.begin() as conn:
            await lock_checkpoint(conn, self.backend, LIVE)  # the live projector waits here until the swap
            while True:
                after = await read_checkpoint(conn, SHADOW)
                batch = await self.store.read_all_in(conn, after, self.batch_size, metadata=False)
                if not batch:
                    break
                await self.shadow.apply_in(conn, after, batch)
                applied += len(batch)
                self.on_progress(len(batch))
            final = await read_checkpoint(conn, SHADOW)
            await self.backend.replace_table(conn, LIVE, SHADOW, NEXT)
            await write_checkpoint(conn, LIVE, final)
            await conn.execute(
                sa.delete(projection_checkpoints).where(projection_checkpoints.c.name == SHADOW)
            )
        return applied

    async def _catch_up(self) -> int:
        """Apply the log to the shadow, batch by batch, until it has nothing more to read."""
        applied = 0
        after = await self.shadow.position()
        reading = self._read(after)
        try:
            while batch := await reading:
                # The next batch is read while this one is applied: the database reads the log and writes the
                # shadow at once, and decoding one batch fills the waits for the other's writes.
                reading = self._read(batch[-1].log_position)
                if not await self.shadow.apply(after, batch):  # moved by someone else: go on from there
                    reading.cancel()
                    after = await self.shadow.position()
                    reading = self._read(after)
                    continue
                after = batch[-1].log_position
                applied += len(batch)
                self.on_progress(len(batch))
        finally:  # interrupted: the batch being read is not wanted, but its connection goes back first
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        return applied

    def _read(self, after: LogPosition) -> asyncio.Task[list[RecordedEvent]]:
        # The orders table never looks at an event's metadata: not read at all.
        return asyncio.create_task(self.store.read_all(after, self.batch_size, metadata=False))
