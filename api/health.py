"""`GET /health`: 200 when every dependency answers, 503 naming the one that does not, and 503 `draining`
while the process shuts down (so that a proxy sends it nothing new).

A read side held back by a long transaction of our database is a warning, not an outage: the engine
still takes and executes orders, but lists, the all-orders stream and the projections stand still. So is a
read replica (DATABASE_READ_URL) that does not answer: what it would serve is read from the primary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from redis.asyncio import Redis

from api.draining import Draining
from eventstore.base import EventStore
from eventstore.replica import Replica

CHECK_TIMEOUT_S = 2.0


class Health(msgspec.Struct, omit_defaults=True):
    status: str  # "ok", "degraded" (a dependency is down) or "draining" (the process is stopping)
    dependencies: dict[str, str]  # name -> "up" or "down: <why>"
    warnings: list[str] = []  # present when something needs a look although every dependency is up


async def probe(check: Awaitable[Any]) -> str:
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
    responses={
        503: ResponseSpec(
            Health,
            description="A dependency is down (`degraded`; `dependencies` says which), or the process is "
            "shutting down (`draining`)",
        )
    },
)
async def health(
    redis: NamedDependency[Redis | None],
    store: NamedDependency[EventStore],
    read_horizon_warn_s: NamedDependency[float],
    draining: NamedDependency[Draining],
    replica: NamedDependency[Replica | None],
) -> Response[Health]:
    if draining.begun:
        return Response(Health("draining", {}), status_code=503)
    dependencies = {"database": await probe(store.ping())}
    if redis is not None:
        dependencies["redis"] = await probe(redis.ping())
    healthy = all(state == "up" for state in dependencies.values())
    warnings = await _read_horizon_warnings(store, read_horizon_warn_s) if healthy else []
    if healthy and replica is not None and (failure := await replica.check()) is not None:
        warnings.append(
            f"read replica down ({failure}): lists, figures and WebSocket catch-up read the primary"
        )
    return Response(
        Health("ok" if healthy else "degraded", dependencies, warnings), status_code=200 if healthy else 503
    )


async def _read_horizon_warnings(store: EventStore, warn_after_s: float) -> list[str]:
    horizon = await store.read_horizon()
    if horizon.holder is None or horizon.holder.transaction_age_s < warn_after_s:
        return []
    return [f"read side held back for over {warn_after_s:g} s: {horizon.describe()}"]
