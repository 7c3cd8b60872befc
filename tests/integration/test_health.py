"""`/health` names each dependency, and answers 503 naming the one that is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from litestar import Litestar
from redis.asyncio import Redis

from api.app import create_app
from eventstore.backend import backend_for
from eventstore.signal import InProcessSignal
from projections.feed import LiveFeed
from projections.queries import OrderQueries
from tests.harness import MARKET_ORDER, serve_http
from venues.chain import Chain

NOTHING_LISTENS = "127.0.0.1:1"


@asynccontextmanager
async def no_roles(_: Litestar) -> AsyncIterator[None]:
    yield


@asynccontextmanager
async def api_on(database_url: str, redis_url: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """The API alone (no worker, no projector) on the given servers, and a client for it."""
    backend = backend_for(database_url)
    db = backend.open(database_url)
    store = backend.event_store(db, InProcessSignal())
    redis = Redis.from_url(redis_url, socket_connect_timeout=1) if redis_url else None

    async def launch_of(symbol: str) -> None:  # no sniper order is submitted here
        return None

    def no_chain() -> Chain:
        raise AssertionError("the API alone reads no chain in these tests")

    app = create_app(
        store=store,
        launch_of=launch_of,
        chain=no_chain,
        queries=OrderQueries(db, store, backend),
        feed=LiveFeed(store, InProcessSignal()),
        redis=redis,
        lifespan=no_roles,
        max_body_bytes=1024,
        metrics=lambda: asyncio.sleep(0, b""),
    )
    try:
        async with serve_http(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
            yield client
    finally:
        await db.dispose()
        if redis is not None:
            await redis.aclose()


async def health_of(database_url: str, redis_url: str | None) -> tuple[int, dict]:
    async with api_on(database_url, redis_url) as client:
        response = await client.get("/health")
    return response.status_code, response.json()


async def test_healthy_dependencies_answer_200(sqlite_url, redis_url):
    status, body = await health_of(sqlite_url, redis_url)
    assert status == 200
    assert body == {"status": "ok", "dependencies": {"database": "up", "redis": "up"}}


async def test_a_redis_that_does_not_answer_gives_503_naming_redis(sqlite_url):
    status, body = await health_of(sqlite_url, f"redis://{NOTHING_LISTENS}/0")
    assert status == 503
    assert body["dependencies"]["database"] == "up"
    assert body["dependencies"]["redis"].startswith("down")


async def test_a_database_that_does_not_answer_gives_503_naming_the_database():
    status, body = await health_of(f"postgresql://postgres@{NOTHING_LISTENS}/postgres", None)
    assert status == 503
    assert body["dependencies"]["database"].startswith("down")
    assert "Traceback" not in str(body)


async def test_submitting_while_the_database_is_down_answers_503_json_and_leaks_nothing():
    async with api_on(f"postgresql://postgres@{NOTHING_LISTENS}/postgres", None) as client:
        response = await client.post("/api/orders/execute", json=MARKET_ORDER)
    assert response.status_code == 503
    assert response.json() == {
        "error": "unavailable",
        "message": "a dependency is unavailable; nothing was done, try again",
    }
