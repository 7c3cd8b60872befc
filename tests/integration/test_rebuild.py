"""Rebuilding the read side from the log: identical to the live one, safe under load and interruption."""

from __future__ import annotations

import asyncio
import os
import subprocess
from decimal import Decimal

import msgspec
import pytest
import sqlalchemy as sa
import websockets

from projections.active_orders import RedisActiveOrders
from projections.order_view import fold
from projections.rebuild import OrdersRebuild
from projections.tables import orders
from tests.harness import engine_settings, project_everything, running_engine
from tests.processes import ORDER_ENGINE

MIXED_OUTCOMES = {"mock_failure_rate": 0.3, "mock_seed": 11, "retry_base_ms": 5, "worker_concurrency": 20}


async def orders_table(engine) -> list[dict]:
    async with engine.services.db.connect() as conn:
        rows = await conn.execute(sa.select(orders).order_by(orders.c.order_id))
        return [dict(row._mapping) for row in rows]


async def settle(engine, order_ids: list[str]) -> None:
    """Wait for every order to end, then for both projections to apply everything."""
    await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
    await project_everything(engine.services)


async def test_rebuild_gives_the_same_read_side_as_live_projection(backend):
    async with running_engine(engine_settings(backend, **MIXED_OUTCOMES)) as engine:
        services = engine.services
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(200)))
        await settle(engine, order_ids)
        live_table = await orders_table(engine)
        live_cache = await services.active_orders.all()

        applied = await OrdersRebuild(services.db, services.store, services.backend, batch_size=97).run()
        if isinstance(services.active_orders, RedisActiveOrders):
            await services.active_orders.reset()
            await project_everything(services)
        rebuilt_table = await orders_table(engine)
        rebuilt_cache = await services.active_orders.all()
        statuses = {row["status"] for row in rebuilt_table}
        retried = sum(row["attempts"] > 1 for row in rebuilt_table)

    assert applied == sum(row["version"] for row in live_table)
    assert rebuilt_table == live_table
    assert rebuilt_cache == live_cache == {}
    assert statuses == {"confirmed", "failed"} and retried, "the run should hold failed and retried orders"


async def test_rebuild_while_orders_flow_ends_equal_to_the_fold_of_the_log(backend):
    async with running_engine(engine_settings(backend, **MIXED_OUTCOMES)) as engine:
        services = engine.services
        first = await asyncio.gather(*(engine.submit() for _ in range(60)))
        more = asyncio.gather(*(engine.submit() for _ in range(60)))
        await OrdersRebuild(services.db, services.store, services.backend, batch_size=25).run()
        order_ids = [*first, *await more]
        await settle(engine, order_ids)
        table = {row["order_id"]: row for row in await orders_table(engine)}
        folded = {order_id: fold(await services.store.read_stream(order_id)) for order_id in order_ids}

    assert set(table) == set(order_ids)
    for order_id, view in folded.items():
        assert view is not None
        assert table[order_id]["version"] == view.version
        assert table[order_id]["status"] == view.status
        assert table[order_id]["tx_hash"] == view.tx_hash


async def test_an_interrupted_rebuild_leaves_the_live_table_serving_and_can_run_again(backend):
    async with running_engine(engine_settings(backend)) as engine:
        services = engine.services
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(40)))
        await settle(engine, order_ids)
        live_table = await orders_table(engine)

        class Interrupted(Exception):
            pass

        def interrupt_after_first_batch(_: int) -> None:
            raise Interrupted

        with pytest.raises(Interrupted):
            await OrdersRebuild(
                services.db,
                services.store,
                services.backend,
                batch_size=30,
                on_progress=interrupt_after_first_batch,
            ).run()
        during = await orders_table(engine)
        listed = (await engine.http.get("/api/orders", params={"limit": 200})).json()["orders"]

        await OrdersRebuild(services.db, services.store, services.backend).run()
        after = await orders_table(engine)

    assert during == live_table
    assert len(listed) == len(order_ids)
    assert after == live_table


async def test_a_new_read_model_column_is_back_filled_by_a_rebuild(backend):
    """Migration 0004 only adds `price_improvement_bps` (0006 made it exact); replaying the log fills it for
    past orders."""
    async with running_engine(engine_settings(backend)) as engine:
        services = engine.services
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(20)))
        await settle(engine, order_ids)
        async with services.db.begin() as conn:  # as the rows stood before the column existed
            await conn.execute(sa.update(orders).values(price_improvement_bps=None))

        await OrdersRebuild(services.db, services.store, services.backend).run()
        rows = {row["order_id"]: row for row in await orders_table(engine)}
        events = {
            order_id: (await engine.http.get(f"/api/orders/{order_id}/events")).json()
            for order_id in order_ids
        }
        view = (await engine.http.get(f"/api/orders/{order_ids[0]}")).json(parse_float=Decimal)

    for order_id, messages in events.items():
        decision = next(m for m in messages if m["type"] == "VenueSelected")
        # The route's amount out against the best quote of any other venue for the whole order.
        quotes, venue = decision["quotes"], decision["selectedVenue"]
        others = [int(q["amountOutRaw"]) for q in quotes if q["venue"] != venue]
        ratio = Decimal(int(decision["amountOutRaw"])) / max(others)
        expected = ((ratio - 1) * 10_000).quantize(Decimal("0.01"))
        assert rows[order_id]["price_improvement_bps"] == expected
        assert expected >= 0
    assert view["priceImprovementBps"] == rows[order_ids[0]]["price_improvement_bps"]


def test_the_cli_rebuilds_a_new_database_from_scratch_and_reports_status(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    env.pop("REDIS_URL", None)

    def order_engine(*args: str) -> str:
        done = subprocess.run([ORDER_ENGINE, *args], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    rebuilt = order_engine("projections", "rebuild", "orders", "--from-scratch")
    status = order_engine("projections", "status")

    assert "orders: rebuilt from 0 events" in rebuilt
    assert "log: 0 events" in status
    assert "orders: checkpoint 0:0, 0 events behind" in status


async def test_rebuilding_the_redis_cache_mid_flight_gives_the_same_active_orders(postgres_url, redis_url):
    slow = {"mock_execution_delay_ms_min": 1500, "mock_execution_delay_ms_max": 1500}
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend, **slow)) as engine:
        services = engine.services
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(5)))
        for order_id in order_ids:  # until every order is at the venue
            url = f"{engine.ws_base}/api/orders/execute?orderId={order_id}"
            async with websockets.connect(url) as socket:
                while msgspec.json.decode(await socket.recv())["status"] != "submitted":
                    pass
        await project_everything(services)
        live = await services.active_orders.all()
        await services.active_orders.reset()
        await project_everything(services)
        rebuilt = await services.active_orders.all()
        await settle(engine, order_ids)

    assert set(live) == set(order_ids)
    assert rebuilt == live
