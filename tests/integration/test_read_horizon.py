"""What may hold the read side back on PostgreSQL: only transactions of our own database, and visibly so.

Followers read the log below a horizon (the oldest transaction that could still add events). A transaction
held open on another database of the same server must not hold it back; one of ours does, and the lag,
`/health` and `/metrics` then say how many events wait and which process holds them.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import psycopg
import websockets

from domain.events import RoutingStarted
from domain.order import Order
from eventstore.base import LOG_START
from tests.harness import engine_settings, running_engine
from tests.services import TEST_DATABASE_URL

FOLLOWERS_KEEP_UP_S = 20  # generous on a busy machine; a frozen read side never gets there


@asynccontextmanager
async def open_write_transaction(url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A transaction that has written (it holds a transaction id) and stays open until the block ends."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SELECT pg_current_xact_id()")
        try:
            yield conn
        finally:
            await conn.rollback()


async def read_log_stream(ws_base: str, count: int) -> list[dict[str, Any]]:
    async with websockets.connect(f"{ws_base}/api/orders/stream") as socket:
        return [msgspec.json.decode(await socket.recv()) for _ in range(count)]


async def projections_caught_up(services: Any) -> None:
    """Until the background projector has applied every committed event (its own work moves the horizon)."""
    for projection in services.projections:
        while await services.store.count_after(await projection.position()):  # noqa: ASYNC110 (another task)
            await asyncio.sleep(0.02)


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


async def test_a_transaction_held_open_on_another_database_does_not_freeze_the_read_side(
    postgres_url, redis_url
):
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with (
        running_engine(engine_settings(backend)) as engine,
        open_write_transaction(TEST_DATABASE_URL),  # on the server's `postgres` database
    ):
        live = asyncio.create_task(read_log_stream(engine.ws_base, count=3 * 6))
        order_ids = [await engine.submit() for _ in range(3)]
        ended = [(await engine.stream(order_id))[0][-1] for order_id in order_ids]
        async with asyncio.timeout(FOLLOWERS_KEEP_UP_S):
            streamed = await live
            await projections_caught_up(engine.services)
        listed = (await engine.http.get("/api/orders")).json()["orders"]
        horizon = await engine.services.store.read_horizon()
        metrics = (await engine.http.get("/metrics")).text

    assert {m["orderId"] for m in streamed} == set(order_ids)
    assert len({(m["orderId"], m["version"]) for m in streamed}) == 18
    assert {o["orderId"]: o["status"] for o in listed} == {m["orderId"]: m["status"] for m in ended}
    assert {m["status"] for m in ended} == {"confirmed"}
    assert horizon.held_back_events == 0
    assert metric(metrics, 'order_engine_projection_lag_events{projection="orders"}') == 0


async def test_our_own_open_append_holds_followers_back_and_says_so(postgres_url, redis_url):
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    settings = engine_settings(backend, read_horizon_warn_s=0.001)
    async with running_engine(settings, worker=False, projector=False) as engine:
        store = engine.services.store
        async with open_write_transaction(postgres_url) as stuck:
            await stuck.execute(  # an append of ours that has not committed yet
                "INSERT INTO order_events (order_id, version, type, data, metadata, recorded_at,"
                " schema_version) VALUES (%s, 1, 'RoutingStarted', '{}', '{}', now(), 1)",
                (str(uuid.uuid4()),),
            )
            order_id = str(uuid.uuid4())
            submitted = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")
            await store.append(order_id, [submitted, RoutingStarted(attempt=1)], expected_version=0)
            await store.append(order_id, [RoutingStarted(attempt=2)], expected_version=2)

            held = await store.read_horizon()
            readable = await store.read_all(LOG_START, 100)
            lag = await store.count_after(LOG_START)
            health = await engine.http.get("/health")
            metrics = (await engine.http.get("/metrics")).text
            stuck_pid = stuck.info.backend_pid
        released = await store.read_horizon()
        readable_after = await store.read_all(LOG_START, 100)

    assert readable == []  # committed after the stuck transaction began: not visible to followers yet
    assert lag == held.held_back_events == 3
    assert held.holder is not None
    assert held.holder.pid == stuck_pid
    assert held.holder.state == "idle in transaction"
    assert held.holder.transaction_age_s > 0
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    [warning] = health.json()["warnings"]
    assert f"PostgreSQL process {stuck_pid}" in warning and "3 events not yet visible" in warning
    assert metric(metrics, 'order_engine_projection_lag_events{projection="orders"}') == 3
    assert metric(metrics, "order_engine_log_held_back_events") == 3
    assert metric(metrics, "order_engine_read_horizon_age_seconds") > 0
    assert released.held_back_events == 0 and released.holder is None
    assert [r.version for r in readable_after] == [1, 2, 3]


async def test_health_has_no_warning_while_nothing_holds_the_read_side_back(postgres_url, redis_url):
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend), worker=False, projector=False) as engine:
        health = await engine.http.get("/health")
    assert health.status_code == 200
    assert "warnings" not in health.json()
