"""Projections and recovery: the active-order cache, and the log as the outbox."""

from __future__ import annotations

import msgspec
import websockets

from eventstore.base import LOG_START
from tests.harness import engine_settings, project_everything, running_engine


async def test_cache_holds_orders_in_flight_and_drops_them_when_they_end(backend):
    slow = {"mock_execution_delay_ms_min": 400, "mock_execution_delay_ms_max": 400}
    async with running_engine(engine_settings(backend, **slow)) as engine:
        services = engine.services
        order_ids = [await engine.submit() for _ in range(3)]
        sockets = [
            await websockets.connect(f"{engine.ws_base}/api/orders/execute?orderId={order_id}")
            for order_id in order_ids
        ]
        for socket in sockets:  # read until each order is at the venue
            while msgspec.json.decode(await socket.recv())["status"] != "submitted":
                pass
        await project_everything(services)
        in_flight = await services.active_orders.all()

        for socket in sockets:
            async for _ in socket:
                pass
        await project_everything(services)
        after = await services.active_orders.all()

    assert set(in_flight) == set(order_ids)
    assert {fields["status"] for fields in in_flight.values()} == {"submitted"}
    assert {fields["tokenIn"] for fields in in_flight.values()} == {"SOL"}
    assert after == {}


async def test_an_order_read_after_its_last_streamed_event_is_never_older_than_that_event(backend):
    """The read table runs a moment behind the log; one order's read must not."""
    async with running_engine(engine_settings(backend), projector=False) as engine:
        order_id = await engine.submit()
        messages, _ = await engine.stream(order_id)  # to the terminal event
        [orders_table] = [p for p in engine.services.projector.projections if p.name == "orders"]
        first_event = await engine.services.store.read_all(LOG_START, 1)
        assert await orders_table.apply(LOG_START, first_event)  # the table holds the order as submitted
        read = (await engine.http.get(f"/api/orders/{order_id}")).json()
        listed = (await engine.http.get("/api/orders")).json()["orders"]

    assert listed[0]["status"] == "pending"  # the list is the read table: eventually consistent
    assert (read["status"], read["version"]) == (messages[-1]["status"], messages[-1]["version"])
    assert read["txHash"] == messages[-1]["txHash"]
