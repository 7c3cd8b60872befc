"""Projector checkpoints kept in the database, updated in the same transaction as the projection."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from eventstore.backend import Backend
from eventstore.base import LOG_START, LogPosition
from projections.tables import projection_checkpoints as checkpoints

# Built once: a projector moves its checkpoint with every batch it applies.
_ADVANCE = (
    sa.update(checkpoints)
    .where(
        checkpoints.c.name == sa.bindparam("checkpoint"),
        checkpoints.c.transaction_id == sa.bindparam("after_transaction_id"),
        checkpoints.c.position == sa.bindparam("after_position"),
    )
    .values(
        transaction_id=sa.bindparam("to_transaction_id"),
        position=sa.bindparam("to_position"),
        updated_at=sa.bindparam("updated_at"),
    )
)


async def read_checkpoint(conn: AsyncConnection, name: str) -> LogPosition:
    """The projection's checkpoint."""
    return await _read(conn, name, lock=False)


async def lock_checkpoint(conn: AsyncConnection, backend: Backend, name: str) -> LogPosition:
    """The projection's checkpoint, held until commit (created if missing), so two projectors take turns."""
    await _create(conn, backend, name)
    return await _read(conn, name, lock=True)


async def advance_checkpoint(
    conn: AsyncConnection, backend: Backend, name: str, after: LogPosition, to: LogPosition
) -> bool:
    """Move the projection's checkpoint from `after` to `to` and hold it until commit, so two projectors take
    turns; False, and nothing changed, when it is not at `after` (another projector moved it first).

    One statement where reading the checkpoint to compare it takes two: the UPDATE waits for the row's
    lock and then tests the row as the other transaction left it."""
    if after == LOG_START:  # the first batch ever: the row may not exist yet
        await _create(conn, backend, name)
    params = {
        "checkpoint": name,
        "after_transaction_id": after.transaction_id,
        "after_position": after.position,
        "to_transaction_id": to.transaction_id,
        "to_position": to.position,
        "updated_at": datetime.now(UTC),
    }
    return await backend.execute_static(conn, _ADVANCE, params) == 1


async def _create(conn: AsyncConnection, backend: Backend, name: str) -> None:
    await conn.execute(
        backend.insert(checkpoints)
        .values(name=name, transaction_id=0, position=0, updated_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )


async def _read(conn: AsyncConnection, name: str, *, lock: bool) -> LogPosition:
    query = sa.select(checkpoints.c.transaction_id, checkpoints.c.position).where(checkpoints.c.name == name)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return LogPosition(row.transaction_id, row.position) if row else LOG_START


async def write_checkpoint(conn: AsyncConnection, name: str, position: LogPosition) -> None:
    await conn.execute(
        sa.update(checkpoints)
        .where(checkpoints.c.name == name)
        .values(
            transaction_id=position.transaction_id, position=position.position, updated_at=datetime.now(UTC)
        )
    )
