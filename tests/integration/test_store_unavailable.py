"""The persistence error contract: however the database is out of reach (refused, no pooled connection free,
the connection killed under the store), the SQL adapters raise the store's StoreUnavailable and never a
driver's exception, so that the API's 503 and 1011 need to know no driver."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from domain.order import Order
from eventstore.backend import Backend, backend_for
from eventstore.base import LOG_START, StoreUnavailable
from eventstore.signal import InProcessSignal
from projections.orders import OrdersProjection
from projections.queries import OrderFilters, OrderQueries
from projections.rebuild import OrdersRebuild

NOTHING_LISTENS = "postgresql://postgres@127.0.0.1:1/postgres"
SUBMITTED = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")

Call = Callable[[], Awaitable[object]]


def every_call(engine: AsyncEngine, backend: Backend) -> dict[str, Call]:
    """Each way the API, the workers and the CLI reach the database through the adapters."""
    store = backend.event_store(engine, InProcessSignal())
    queries = OrderQueries(engine, store, backend)
    projection = OrdersProjection(engine, backend)
    return {
        "append": lambda: store.append(str(uuid.uuid4()), [SUBMITTED], expected_version=0),
        "read_stream": lambda: store.read_stream(str(uuid.uuid4())),
        "read_all": lambda: store.read_all(LOG_START, 10),
        "count_after": lambda: store.count_after(LOG_START),
        "read_horizon": store.read_horizon,
        "log_position": lambda: store.log_position(1),
        "ping": store.ping,
        "page": lambda: queries.page(OrderFilters(), 10, None),
        "stats": queries.stats,
        "execution_latencies": lambda: queries.execution_latencies([1.0]),
        "unfinished": lambda: queries.unfinished(datetime.now(UTC)),
        "projection position": projection.position,
        "projection apply": lambda: projection.apply(LOG_START, []),
        "rebuild": OrdersRebuild(engine, store, backend).run,
    }


async def unavailable(
    calls: dict[str, Call], before_each: Callable[[], Awaitable[None]] | None = None
) -> list[str]:
    """The calls that did not raise StoreUnavailable (with what they did instead)."""
    wrong = []
    for name, call in calls.items():
        if before_each is not None:
            await before_each()
        try:
            await call()
        except StoreUnavailable as error:
            assert error.__cause__ is not None, f"{name}: the driver's error is kept as the cause"
            continue
        except Exception as error:
            wrong.append(f"{name}: {type(error).__module__}.{type(error).__name__}")
        else:
            wrong.append(f"{name}: returned")
    return wrong


async def test_a_database_that_refuses_connections_is_store_unavailable_everywhere():
    backend = backend_for(NOTHING_LISTENS)
    engine = backend.open(NOTHING_LISTENS)
    try:
        assert await unavailable(every_call(engine, backend)) == []
    finally:
        await engine.dispose()


@asynccontextmanager
async def small_pool(database_url: str) -> AsyncIterator[tuple[AsyncEngine, Backend]]:
    backend = backend_for(database_url)
    url = backend.driver_url(make_url(database_url))
    engine = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        yield engine, backend
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_no_pooled_connection_free_in_time_is_store_unavailable_everywhere(database, request):
    async with small_pool(request.getfixturevalue(f"{database}_url")) as (engine, backend):
        calls = every_call(engine, backend)
        if database == "sqlite":
            del calls["read_horizon"]  # one writer at a time: nothing can hold followers back, nothing to ask
        async with engine.connect():  # the pool's one connection, held by someone else
            assert await unavailable(calls) == []


async def test_a_connection_killed_under_the_store_is_store_unavailable_everywhere(postgres_url):
    """PostgreSQL ends the pooled connection between two calls (a restart, an administrator, a failover):
    the next statement on it fails, through SQLAlchemy or straight on psycopg (appends and follower reads)."""
    # Named, so that only the store's connection is ended: other tests' connections to the database may
    # still be open (closed when collected).
    store_url = str(make_url(postgres_url).update_query_dict({"application_name": "store-under-test"}))
    backend = backend_for(store_url)
    engine = backend.open(store_url)
    store = backend.event_store(engine, InProcessSignal())

    async def kill_the_pooled_connection() -> None:
        await store.ping()  # one connection in the pool, idle
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            killed = await (
                await admin.execute(
                    "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name = 'store-under-test'"
                )
            ).fetchone()
        assert killed == (1,)

    try:
        assert await unavailable(every_call(engine, backend), kill_the_pooled_connection) == []
    finally:
        await engine.dispose()
