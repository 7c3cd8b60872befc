"""Reads from a real streaming replica (DATABASE_READ_URL), started by the test (tests/replica.py), its lag
made by pausing its replay (`pg_wal_replay_pause()`): lists and figures show the replica's older view; one
order's read is current; WebSocket subscribers get every event once, caught up from the replica as far as it
has them and the rest from the primary; and a replica that goes down takes nothing down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
import pytest
import websockets

from domain.order import Order
from eventstore.backend import backend_for
from eventstore.base import LOG_START, RecordedEvent
from eventstore.signal import InProcessSignal
from tests import market_moves
from tests.harness import Engine, engine_settings, project_everything, running_engine
from tests.replica import Replica, streaming_replica
from tests.services import create_database, drop_database

TERMINAL = {"confirmed", "failed", "cancelled", "expired"}
WAIT_S = 30
ORDER_ID = "5b7f3c1e-8a2d-4f6b-9c0e-1d2a3b4c5d6e"
SUBMITTED = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")


@pytest.fixture
def replica() -> Iterator[Replica]:
    with streaming_replica() as replica:
        yield replica


@asynccontextmanager
async def replica_engine(
    postgres_url: str, redis_url: str, replica: Replica, **settings: Any
) -> AsyncIterator[Engine]:
    """The engine on the test's database, reading lists, figures and catch-up from its replica (caught up
    with the database as the test found it)."""
    await replica.catch_up()
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    read_url = replica.url_of(postgres_url)
    async with running_engine(engine_settings(backend, database_read_url=read_url, **settings)) as engine:
        yield engine


@pytest.fixture
async def engine(postgres_url: str, redis_url: str, replica: Replica) -> AsyncIterator[Engine]:
    async with replica_engine(postgres_url, redis_url, replica) as engine:
        yield engine


async def listed(engine: Engine) -> list[tuple[str, str]]:
    orders = (await engine.http.get("/api/orders")).json()["orders"]
    return [(order["orderId"], order["status"]) for order in orders]


async def run_to_the_end(engine: Engine) -> tuple[str, list[dict[str, Any]]]:
    order_id = await engine.submit()
    messages, close_code = await engine.stream(order_id)
    assert close_code == 1000
    return order_id, messages


async def submit_waiting_limit_order(engine: Engine) -> str:
    """A limit order far above the market: it waits (versions 1 and 2 in one append) until cancelled."""
    far_above = (await market_moves.best_spot(engine.http, "/market") * 10).quantize(Decimal("0.01"))
    response = await engine.http.post(
        "/api/orders/execute",
        json={
            "orderType": "limit",
            "tokenIn": "SOL",
            "tokenOut": "USDC",
            "amountIn": "0.5",
            "slippageBps": 50,
            "limitPrice": str(far_above),
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["orderId"]


async def test_lists_and_figures_show_the_replicas_older_view_one_order_the_primarys(engine, replica):
    first, _ = await run_to_the_end(engine)
    await project_everything(engine.services)
    await replica.catch_up()
    await replica.pause()  # the replica stays where it is: the first order confirmed, no second
    second = await engine.submit()
    right_after_post = await engine.http.get(f"/api/orders/{second}")
    messages, close_code = await engine.stream(second)
    await project_everything(engine.services)  # the primary's read table has the second order too
    behind = await listed(engine)
    behind_stats = (await engine.http.get("/api/stats")).json()
    read = (await engine.http.get(f"/api/orders/{second}")).json()
    await replica.resume()
    await replica.catch_up()
    caught_up = await listed(engine)
    caught_up_stats = (await engine.http.get("/api/stats")).json()

    assert right_after_post.status_code == 200  # the primary's log: current right after the POST
    assert right_after_post.json()["version"] >= 1
    assert close_code == 1000
    assert behind == [(first, "confirmed")]  # the replica's view: as it was when paused
    assert behind_stats["total"] == 1
    assert (read["status"], read["version"]) == (messages[-1]["status"], messages[-1]["version"])
    assert caught_up == [(second, "confirmed"), (first, "confirmed")]
    assert caught_up_stats["total"] == 2


async def test_an_order_stream_is_caught_up_from_the_lagging_replica_and_completed_from_the_primary(
    engine, replica
):
    order_id = await submit_waiting_limit_order(engine)
    await project_everything(engine.services)  # listed as waiting
    await replica.catch_up()
    await replica.pause()  # the replica has versions 1 and 2 (submitted, armed); the cancel is not replayed
    cancelled = await engine.http.post(f"/api/orders/{order_id}/cancel", json={})
    served_before = engine.services.replica.served
    messages, close_code = await engine.stream(order_id)
    served_by_replica = engine.services.replica.served - served_before
    read = (await engine.http.get(f"/api/orders/{order_id}")).json()
    await project_everything(engine.services)
    behind = await listed(engine)

    assert cancelled.status_code == 200
    assert close_code == 1000
    assert [(m["version"], m["type"]) for m in messages] == [
        (1, "OrderSubmitted"),
        (2, "TriggerArmed"),
        (3, "OrderCancelled"),
    ]
    assert served_by_replica == 1  # the catch-up's read; version 3 came from the primary
    assert engine.services.replica.fallbacks == 0
    # One order's read is never older than an event already sent; the list, from the replica, may be.
    assert (read["status"], read["version"]) == ("cancelled", 3)
    assert behind == [(order_id, "waiting")]


async def test_subscribers_joining_while_the_replica_lags_get_every_event_once(
    postgres_url, redis_url, replica
):
    """Orders executing while the replica stops mid-way: each order's subscribers and a follower of the whole
    log, joining then, get every event once and in order, none older than one already sent."""
    landing = {"mock_execution_delay_ms_min": 300, "mock_execution_delay_ms_max": 600}
    async with replica_engine(postgres_url, redis_url, replica, **landing) as engine:
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(8)))
        await replica.catch_up()  # each order's events so far: submitted, routed, sent to the chain...
        await replica.pause()
        on_replica = await versions_on(replica.url_of(postgres_url))
        streams, late, reads, logged = await subscribe_while_it_lags(engine, order_ids)
        everything = await engine.services.store.read_all(LOG_START, 10_000)
        served, fallbacks = engine.services.replica.served, engine.services.replica.fallbacks

    # The replica had a part of the orders' streams, the primary the rest.
    assert any(
        0 < on_replica.get(order_id, 0) < len(messages)
        for order_id, (messages, _) in zip(order_ids, streams, strict=True)
    )
    for (messages, close_code), (rest, late_close), read in zip(streams, late, reads, strict=True):
        versions = [m["version"] for m in messages]
        assert close_code == late_close == 1000
        assert versions == list(range(1, len(versions) + 1))
        assert messages[-1]["status"] in TERMINAL
        assert rest == messages[2:]
        assert (read["status"], read["version"]) == (messages[-1]["status"], messages[-1]["version"])
    tokens = [m["resumeToken"] for m in logged]
    assert tokens == sorted(set(tokens))  # strictly increasing: none twice, none out of order
    ours = [r for r in everything if r.order_id in set(order_ids)]
    assert [(m["orderId"], m["version"]) for m in logged] == [(r.order_id, r.version) for r in ours]
    assert served >= 1 and fallbacks == 0


async def versions_on(url: str) -> dict[str, int]:
    """Each order's last version in the log of the database at `url`."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        rows = await (
            await conn.execute("SELECT order_id, max(version) FROM order_events GROUP BY 1")
        ).fetchall()
    return {str(order_id): version for order_id, version in rows}


async def subscribe_while_it_lags(engine: Engine, order_ids: list[str]) -> tuple[Any, Any, Any, Any]:
    """Each order's stream from the start and from version 2, its read after, and the whole log's stream."""
    log = asyncio.create_task(follow_log_until_ended(engine, set(order_ids)))
    streams = await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
    late = await asyncio.gather(*(engine.stream(order_id, after_version=2) for order_id in order_ids))
    reads = [(await engine.http.get(f"/api/orders/{order_id}")).json() for order_id in order_ids]
    return streams, late, reads, await log


async def follow_log_until_ended(engine: Engine, order_ids: set[str]) -> list[dict[str, Any]]:
    """The whole-log stream from the start until every one of `order_ids` has ended."""
    messages, ended = [], set()
    async with asyncio.timeout(WAIT_S), websockets.connect(f"{engine.ws_base}/api/orders/stream") as socket:
        while ended != order_ids:
            message = msgspec.json.decode(await socket.recv())
            messages.append(message)
            if message["status"] in TERMINAL:
                ended.add(message["orderId"])
    return messages


async def test_a_follower_of_the_replica_does_not_pass_a_transaction_still_running_on_the_primary(
    postgres_url, replica
):
    """On a standby, pg_current_snapshot() lists no running transaction; the followers' horizon there must
    still stop below one that runs on the primary, or its events, committed later, would be passed over."""
    await replica.catch_up()
    backend = backend_for(postgres_url)
    primary_db, replica_db = backend.open(postgres_url), backend.open(replica.url_of(postgres_url))
    primary = backend.event_store(primary_db, InProcessSignal())
    on_replica = backend.event_store(replica_db, InProcessSignal())
    try:
        async with await psycopg.AsyncConnection.connect(postgres_url) as running:
            await running.execute("SELECT pg_current_xact_id()")  # a transaction id, not yet ended
            [appended] = await primary.append(ORDER_ID, [SUBMITTED], expected_version=0)  # a later one
            await replica.catch_up()
            while_running = await on_replica.read_all(LOG_START, 10)
            await running.commit()
        await replica.catch_up()
        after_it_ended = await until_read(on_replica)
    finally:
        await primary_db.dispose()
        await replica_db.dispose()

    assert while_running == []
    assert [r.log_position for r in after_it_ended] == [appended.log_position]


async def until_read(store: Any) -> list[RecordedEvent]:
    """The log as a follower reads it once something is readable: transactions of other tests on the same
    server hold a replica's horizon too, for a moment."""
    async with asyncio.timeout(WAIT_S):
        while not (read := await store.read_all(LOG_START, 10)):  # noqa: ASYNC110 (another server's state)
            await asyncio.sleep(0.02)
    return read


async def test_a_replica_that_goes_down_takes_nothing_down(engine, replica):
    before, _ = await run_to_the_end(engine)
    await project_everything(engine.services)
    await replica.catch_up()
    assert [order_id for order_id, _ in await listed(engine)] == [before]
    replica.stop()

    order_id = await engine.submit()
    read = await engine.http.get(f"/api/orders/{order_id}")
    messages, close_code = await engine.stream(order_id)
    await project_everything(engine.services)
    page = await engine.http.get("/api/orders")
    stats = await engine.http.get("/api/stats")
    health = await engine.http.get("/health")
    metrics = (await engine.http.get("/metrics")).text

    assert read.status_code == 200
    assert close_code == 1000 and messages[-1]["status"] == "confirmed"
    # Lists and figures are read from the primary meanwhile: current, not refused.
    assert page.status_code == 200
    assert [order["orderId"] for order in page.json()["orders"]] == [order_id, before]
    assert stats.json()["total"] == 2
    assert health.status_code == 200
    assert any("read replica down" in warning for warning in health.json()["warnings"])
    assert 'order_engine_replica_reads_total{served_by="primary"}' in metrics
    assert engine.services.replica.fallbacks >= 3  # the stream's catch-up, the list, the figures


async def test_a_replica_that_answers_with_errors_of_its_own_is_left_for_the_primary(postgres_url, redis_url):
    """A replica that has not replayed the primary's migrations yet (here: a database on the same server
    with no schema at all) fails each read with an error that is not "unreachable": lists, figures, metrics
    and catch-up are read from the primary, and /health says why."""
    unmigrated = create_database()
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    try:
        async with running_engine(engine_settings(backend, database_read_url=unmigrated)) as engine:
            order_id, messages = await run_to_the_end(engine)
            await project_everything(engine.services)
            page = await engine.http.get("/api/orders")
            stats = await engine.http.get("/api/stats")
            metrics = await engine.http.get("/metrics")
            health = await engine.http.get("/health")
    finally:
        drop_database(unmigrated)

    assert messages[-1]["status"] == "confirmed" and [m["version"] for m in messages] == list(
        range(1, len(messages) + 1)
    )
    assert (page.status_code, stats.status_code, metrics.status_code) == (200, 200, 200)
    assert [order["orderId"] for order in page.json()["orders"]] == [order_id]
    assert stats.json()["total"] == 1
    assert health.status_code == 200
    assert any(
        "read replica down (ProgrammingError" in warning and "does not exist" in warning
        for warning in health.json()["warnings"]
    ), health.json()
