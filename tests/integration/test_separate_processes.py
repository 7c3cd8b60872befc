"""The roles as separate processes on PostgreSQL + Redis, as `order-engine api|worker|projector` run them."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import msgspec
import pytest
import sqlalchemy as sa
import websockets

from domain.events import OrderConfirmed, OrderFailed, RoutingStarted, TransactionSubmitted
from eventstore.base import LOG_START
from projections.order_view import fold
from projections.orders import OrdersProjection
from projections.tables import orders
from tests.harness import MARKET_ORDER, engine_settings, running_engine, stream
from tests.processes import (
    environment,
    free_port,
    role_processes,
    wait_for_workers,
    wait_until_healthy,
)


async def test_rate_limit_holds_across_two_worker_processes(postgres_url, redis_url, tmp_path):
    limit, window_s, orders = 5, 2.0, 15
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend), worker=False) as engine:
        env = environment(
            postgres_url,
            redis_url,
            rate_limit_max=limit,
            rate_limit_window_s=window_s,
            worker_concurrency=3,
            market_url=engine.market_url,
        )
        with role_processes(["worker", "worker"], env, tmp_path):
            await wait_for_workers(redis_url, 2)
            order_ids = await asyncio.gather(*(engine.submit() for _ in range(orders)))
            results = await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
        streams = [await engine.services.store.read_stream(order_id) for order_id in order_ids]

    assert all(messages[-1]["status"] == "confirmed" for messages, _ in results)
    starts = sorted(
        (r.recorded_at.timestamp(), r.metadata["worker"])
        for stream in streams
        for r in stream
        if isinstance(r.event, RoutingStarted) and r.event.attempt == 1
    )
    times = [t for t, _ in starts]
    # Never more than `limit` starts within one window (less a little for the time between taking the
    # turn and recording the event).
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + window_s - 0.05) <= limit, [
            round(u - times[0], 3) for u in times
        ]
    assert times[-1] - times[0] >= 2 * window_s - 0.1  # 15 orders at 5 per window need three windows
    assert len({worker for _, worker in starts}) == 2, "both worker processes should have started orders"


async def test_an_order_runs_through_separate_api_worker_and_projector_processes(
    postgres_url, redis_url, tmp_path
):
    port, market_port = free_port(), free_port()
    market_url = f"http://127.0.0.1:{market_port}"
    env = environment(postgres_url, redis_url, port=port, market_port=market_port, market_url=market_url)
    base_url = f"http://127.0.0.1:{port}"
    with role_processes(["market", "api", "worker", "projector"], env, tmp_path):
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
            httpx.AsyncClient(base_url=market_url) as market,
        ):
            await wait_until_healthy(market)
            await wait_until_healthy(http)
            response = await http.post("/api/orders/execute", json=MARKET_ORDER)
            assert response.status_code == 201
            order_id = response.json()["orderId"]
            messages, close_code = await stream(base_url.replace("http", "ws"), order_id)
            # The list is served from the read table alone, which the projector process fills a moment
            # behind the log.
            async with asyncio.timeout(10):
                while not (page := (await http.get("/api/orders?status=confirmed")).json())["orders"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

    assert close_code == 1000
    assert [m["status"] for m in messages] == [
        "pending",
        "routing",
        "routing",
        "building",
        "submitted",
        "confirmed",
    ]
    (view,) = page["orders"]
    assert view["orderId"] == order_id
    assert view["txHash"] == messages[-1]["txHash"]
    assert view["version"] == len(messages)


@pytest.mark.parametrize("kill_at", ["routing", "submitted"])
async def test_a_worker_killed_mid_order_is_replaced_and_the_order_ends_exactly_once(
    postgres_url, redis_url, tmp_path, kill_at
):
    slow = {
        "mock_quote_delay_ms": 1500,
        "mock_execution_delay_ms_min": 1500,
        "mock_execution_delay_ms_max": 1500,
    }
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    # The market, inside this test's engine, is slow to answer and to land: the order is caught at either.
    async with running_engine(engine_settings(backend, **slow), worker=False) as engine:
        env = environment(
            postgres_url, redis_url, worker_lease_s=1, mock_seed=3, market_url=engine.market_url
        )
        with role_processes(["worker"], env, tmp_path / "first") as (first,):
            await wait_for_workers(redis_url, 1)
            order_id = await engine.submit()
            url = f"{engine.ws_base}/api/orders/execute?orderId={order_id}"
            async with websockets.connect(url) as socket:
                while msgspec.json.decode(await socket.recv())["status"] != kill_at:
                    pass
            first.kill()
            first.wait()
        with role_processes(["worker"], env, tmp_path / "second"):
            messages, close_code = await engine.stream(order_id)
        stream = await engine.services.store.read_stream(order_id)
        landed = (await engine.http.get(f"/market/transactions?order={order_id}")).json()

    assert close_code == 1000
    assert [r.version for r in stream] == list(range(1, len(stream) + 1))
    assert sum(isinstance(r.event, (OrderConfirmed, OrderFailed)) for r in stream) == 1
    assert messages[-1]["type"] == "OrderConfirmed"
    workers = {r.metadata.get("worker") for r in stream if r.version > 1}
    assert len(workers) == 2, "the second worker should have finished what the first began"
    submissions = [r.event for r in stream if isinstance(r.event, TransactionSubmitted)]
    assert len({s.client_tx_id for s in submissions}) == len(submissions)
    # On the chain: exactly one swap landed for the order, the one it was confirmed by.
    assert [tx["txHash"] for tx in landed] == [messages[-1]["txHash"]]


async def test_a_client_whose_api_process_is_killed_resumes_on_another_without_gap_or_duplicate(
    postgres_url, redis_url, tmp_path
):
    slow = {"mock_execution_delay_ms_min": 1500, "mock_execution_delay_ms_max": 1500}
    ports = [free_port(), free_port()]
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend, **slow)) as engine:  # the worker and projector
        with (
            role_processes(["api"], environment(postgres_url, redis_url, port=ports[0]), tmp_path / "a") as (
                a,
            ),
            role_processes(["api"], environment(postgres_url, redis_url, port=ports[1]), tmp_path / "b"),
        ):
            for port in ports:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    await wait_until_healthy(http)
            order_id = await engine.submit()
            before: list[dict] = []
            async with websockets.connect(
                f"ws://127.0.0.1:{ports[0]}/api/orders/execute?orderId={order_id}"
            ) as socket:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for raw in socket:
                        before.append(msgspec.json.decode(raw))
                        if before[-1]["status"] == "submitted":
                            a.kill()  # the API process dies mid-stream
            after, close_code = await stream(f"ws://127.0.0.1:{ports[1]}", order_id, before[-1]["version"])
        complete, _ = await engine.stream(order_id)

    assert close_code == 1000
    assert before + after == complete
    assert [m["version"] for m in before + after] == list(range(1, len(complete) + 1))


async def test_two_projectors_one_killed_midway_apply_every_event_once(postgres_url, redis_url, tmp_path):
    env = environment(postgres_url, redis_url)
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    mixed = {"mock_failure_rate": 0.3, "mock_seed": 5, "worker_concurrency": 20}
    async with running_engine(engine_settings(backend, **mixed), projector=False) as engine:
        with role_processes(["projector", "projector"], env, tmp_path) as (doomed, survivor):
            first = await asyncio.gather(*(engine.submit() for _ in range(40)))
            await asyncio.gather(*(engine.stream(order_id) for order_id in first[:10]))
            doomed.kill()  # a projector dies while the log keeps growing
            second = await asyncio.gather(*(engine.submit() for _ in range(40)))
            order_ids = [*first, *second]
            await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
            head = await engine.services.store.count_after(LOG_START)
            live_table = OrdersProjection(engine.services.db, engine.services.backend)
            async with asyncio.timeout(20):  # the survivor catches up with the head of the log
                while await engine.services.store.count_after(await live_table.position()):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert survivor.poll() is None, "the surviving projector should still run"
        async with engine.services.db.connect() as conn:
            rows = {row.order_id: row for row in await conn.execute(sa.select(orders))}
        folded = {order_id: fold(await engine.services.store.read_stream(order_id)) for order_id in order_ids}

    assert head == sum(view.version for view in folded.values())
    assert set(rows) == set(order_ids)
    for order_id, view in folded.items():
        row = rows[order_id]
        assert (row.version, row.status, row.attempts, row.tx_hash) == (
            view.version,
            view.status,
            view.attempts,
            view.tx_hash,
        )
    logs = "".join(path.read_text() for path in tmp_path.glob("projector-*.log"))
    assert "ProjectionGap" not in logs
