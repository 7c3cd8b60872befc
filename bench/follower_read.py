"""A follower's read of the log: its cost with our database's own read horizon beside the server-wide one it
replaced (`pg_snapshot_xmin(pg_current_snapshot())`), on the same log, in the same run, the two taking turns.
"""

from __future__ import annotations

import statistics
import time

import sqlalchemy as sa

from bench.results import Figure, Size
from eventstore.base import LOG_START, LogPosition
from eventstore.postgres import POSTGRES, PostgresEventStore
from eventstore.signal import InProcessSignal
from eventstore.tables import Xid8, order_events

READS = {Size.SMOKE: 20, Size.FULL: 2_000}  # per kind and kind of read
BATCH = 500  # the projector's and the all-orders stream's batch
REFERENCE = "server-wide horizon (before)"


class ServerWideHorizonStore(PostgresEventStore):
    """The follower as it was: held back by every transaction on the server, whatever its database."""

    def _after(self, after: LogPosition) -> sa.ColumnElement[bool]:
        horizon = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot(), type_=Xid8())
        return sa.and_(self._past(after), order_events.c.transaction_id < horizon)


async def measure(url: str, size: Size) -> list[Figure]:
    """Median time of a read at the head of the log (a live follower's usual read: nothing new) and of a
    full batch, ours beside the reference."""
    stores = {
        "ours": PostgresEventStore(POSTGRES.open(url), InProcessSignal()),
        REFERENCE: ServerWideHorizonStore(POSTGRES.open(url), InProcessSignal()),
    }
    try:
        head = await _head(stores["ours"])
        reads = {"at the head (0 events)": head, f"of {BATCH} events": LOG_START}
        samples: dict[tuple[str, str], list[float]] = {(k, r): [] for k in stores for r in reads}
        for store in stores.values():  # warm both pools and statement paths before timing
            await store.read_all(head, BATCH)
        for _ in range(READS[size]):
            for read, after in reads.items():
                for kind, store in stores.items():
                    started = time.perf_counter()
                    await store.read_all(after, BATCH)
                    samples[kind, read].append((time.perf_counter() - started) * 1e6)
    finally:
        for store in stores.values():
            await store.engine.dispose()
    return [
        Figure(
            name=f"follower read {read}, median",
            value=statistics.median(samples["ours", read]),
            unit="µs",
            reference=REFERENCE,
            reference_value=statistics.median(samples[REFERENCE, read]),
        )
        for read in reads
    ]


async def _head(store: PostgresEventStore) -> LogPosition:
    """The log position past every event stored (a follower there reads nothing)."""
    query = sa.select(
        sa.func.max(sa.cast(sa.cast(order_events.c.transaction_id, sa.Text), sa.BigInteger)),
        sa.func.max(order_events.c.position),
    )
    async with store.one_statement.connect() as conn:
        transaction_id, position = (await conn.execute(query)).one()
    return LogPosition(transaction_id or 0, position or 0)
