"""Projector checkpoints kept in the database, updated in the same transaction as the projection."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from eventstore.base import LOG_START, LogPosition
from projections.tables import projection_checkpoints as checkpoints
from projections.upsert import insert_ignoring_duplicates


async def read_checkpoint(conn: AsyncConnection, name: str, *, lock: bool = False) -> LogPosition:
    """The projection's checkpoint; `lock` holds it until commit, so two projectors take turns."""
    if lock:
        await conn.execute(
            insert_ignoring_duplicates(conn, checkpoints).values(
                name=name, commit_id=0, position=0, updated_at=datetime.now(UTC)
            )
        )
    query = sa.select(checkpoints.c.commit_id, checkpoints.c.position).where(checkpoints.c.name == name)
    row = (await conn.execute(query.with_for_update() if lock else query)).first()
    return LogPosition(row.commit_id, row.position) if row else LOG_START


async def write_checkpoint(conn: AsyncConnection, name: str, position: LogPosition) -> None:
    await conn.execute(
        sa.update(checkpoints)
        .where(checkpoints.c.name == name)
        .values(commit_id=position.commit_id, position=position.position, updated_at=datetime.now(UTC))
    )
