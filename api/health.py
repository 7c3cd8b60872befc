"""`GET /health`: 200 when every dependency answers, 503 naming the one that does not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

CHECK_TIMEOUT_S = 2.0


class Health(msgspec.Struct):
    status: str  # "ok" or "degraded"
    dependencies: dict[str, str]  # name -> "up" or "down: <why>"


async def _database(db: AsyncEngine) -> None:
    async with db.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def _probe(check: Awaitable[Any]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):  # (not wait_for: see Projector.run)
            await check
    except Exception as error:
        return f"down: {type(error).__name__}"
    return "up"


@get(
    "/health",
    tags=["health"],
    summary="Dependency health",
    responses={503: ResponseSpec(Health, description="A dependency is down; `dependencies` says which")},
)
async def health(db: NamedDependency[AsyncEngine], redis: NamedDependency[Redis | None]) -> Response[Health]:
    dependencies = {"database": await _probe(_database(db))}
    if redis is not None:
        dependencies["redis"] = await _probe(redis.ping())
    healthy = all(state == "up" for state in dependencies.values())
    return Response(
        Health("ok" if healthy else "degraded", dependencies), status_code=200 if healthy else 503
    )
