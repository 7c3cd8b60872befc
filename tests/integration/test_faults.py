"""Faults caused for real: Redis flushed while orders are in flight."""

from __future__ import annotations

import asyncio

import msgspec
import redis.asyncio as aioredis
import websockets

from domain.events import OrderConfirmed, OrderFailed
from tests.harness import engine_settings, running_engine

SLOW = {"mock_execution_delay_ms_min": 800, "mock_execution_delay_ms_max": 800, "worker_lease_s": 2}


async def test_flushing_redis_mid_flight_loses_no_order_and_ends_each_once(postgres_url, redis_url):
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend, **SLOW)) as engine:
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(12)))
        first = order_ids[0]
        async with websockets.connect(f"{engine.ws_base}/api/orders/execute?orderId={first}") as socket:
            while msgspec.json.decode(await socket.recv())["status"] != "submitted":
                pass
        client = aioredis.Redis.from_url(redis_url)
        await client.flushdb()  # the queue, the claims, the cache and the rate limiter: all gone
        await client.aclose()
        results = await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
        streams = [await engine.services.store.read_stream(order_id) for order_id in order_ids]
        await engine.services.projector.catch_up(engine.services.active_orders)
        cache = await engine.services.active_orders.all()

    assert all(code == 1000 for _, code in results)
    for stream in streams:
        assert [r.version for r in stream] == list(range(1, len(stream) + 1))
        assert sum(isinstance(r.event, (OrderConfirmed, OrderFailed)) for r in stream) == 1
    assert cache == {}, "the cache is rebuilt from the log and holds no finished order"
