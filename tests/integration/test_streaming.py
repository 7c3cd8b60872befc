"""The per-order WebSocket: live, mid-flight and late subscribers all get the same gap-free stream."""

from __future__ import annotations

import asyncio

import msgspec
import websockets

from tests.harness import engine_settings, running_engine

SLOW_VENUES = {"mock_execution_delay_ms_min": 300, "mock_execution_delay_ms_max": 300}


async def test_live_mid_flight_and_late_subscribers_see_the_same_stream(backend):
    async with running_engine(engine_settings(backend, **SLOW_VENUES)) as engine:
        order_id = await engine.submit()
        mid_flight: asyncio.Task | None = None
        live = []
        url = f"{engine.ws_base}/api/orders/execute?orderId={order_id}"
        async with websockets.connect(url) as socket:
            async for raw in socket:
                message = msgspec.json.decode(raw)
                live.append(message)
                if message["status"] == "submitted":  # join while the venue is executing
                    mid_flight = asyncio.create_task(engine.stream(order_id))
        assert mid_flight is not None
        mid_flight_messages, mid_close = await mid_flight
        late_messages, late_close = await engine.stream(order_id)
        tail, _ = await engine.stream(order_id, after_version=3)

    versions = [m["version"] for m in live]
    assert versions == list(range(1, len(live) + 1))
    assert live[-1]["status"] == "confirmed"
    assert mid_flight_messages == live
    assert late_messages == live
    assert tail == live[3:]
    assert mid_close == late_close == 1000


async def test_many_clients_on_one_order_all_get_everything(backend):
    async with running_engine(engine_settings(backend, **SLOW_VENUES)) as engine:
        order_id = await engine.submit()
        results = await asyncio.gather(*(engine.stream(order_id) for _ in range(50)))
        assert engine.services.feed.subscriber_count == 0

    first, _ = results[0]
    assert first[-1]["type"] == "OrderConfirmed"
    assert all(messages == first and code == 1000 for messages, code in results)


async def test_resuming_near_or_after_the_end_gets_the_rest_then_closes(backend):
    async with running_engine(engine_settings(backend)) as engine:
        order_id = await engine.submit()
        messages, _ = await engine.stream(order_id)
        last_only = await engine.stream(order_id, after_version=len(messages) - 1)
        nothing_left = await engine.stream(order_id, after_version=len(messages))
    assert last_only == (messages[-1:], 1000)
    assert nothing_left == ([], 1000)
