"""Projector checkpoints kept in the database, updated in the same transaction as the projection."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from eventstore.backend import Backend
from eventstore.base import LOG_START, LogPosition
from projections.tables import projection_checkpoints as checkpoints


async def read_checkpoint(conn: AsyncConnection, name: str) -> LogPosition:
    """The projection's checkpoint."""
    return await _read(conn, name, lock=False)


async def lock_checkpoint(conn: AsyncConnection, backend: Backend, name: str) -> LogPosition:
    """The projection's checkpoint, held until commit (created if missing), so two projectors take turns."""
    await conn.execute(
        backend.insert(checkpoints)
        .values(name=name, transaction_id=0, position=0, updated_at=datetime.now(UTC))
        .on_conflict_do_nothing()
    )
    return await _read(conn, name, lock=True)


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
