"""Faults caused for real: Redis flushed, PostgreSQL gone for a while, with orders in flight."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import redis.asyncio as aioredis
import websockets

from domain.events import OrderConfirmed, OrderFailed
from tests.harness import MARKET_ORDER, engine_settings, project_everything, running_engine
from tests.proxy import DroppableProxy

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
        await project_everything(engine.services)
        cache = await engine.services.active_orders.all()

    assert all(code == 1000 for _, code in results)
    for stream in streams:
        assert [r.version for r in stream] == list(range(1, len(stream) + 1))
        assert sum(isinstance(r.event, (OrderConfirmed, OrderFailed)) for r in stream) == 1
    assert cache == {}, "the cache is rebuilt from the log and holds no finished order"


async def test_while_postgres_is_away_submits_get_503_sockets_close_1011_and_every_order_ends_after(
    postgres_url, redis_url
):
    slow = {"mock_execution_delay_ms_min": 1000, "mock_execution_delay_ms_max": 1000, "worker_lease_s": 1}
    async with DroppableProxy("127.0.0.1:5432") as database:
        proxied = postgres_url.replace("127.0.0.1:5432", database.url.removeprefix("http://"))
        backend = {"database_url": proxied, "redis_url": redis_url}
        async with running_engine(engine_settings(backend, **slow)) as engine:
            order_ids = await asyncio.gather(*(engine.submit() for _ in range(4)))
            seen = []
            url = f"{engine.ws_base}/api/orders/execute?orderId={order_ids[0]}"
            async with websockets.connect(url) as socket:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for raw in socket:
                        seen.append(msgspec.json.decode(raw))
                        if seen[-1]["status"] == "submitted":
                            database.drop()  # PostgreSQL goes away while the venues execute
            closed_with = socket.close_code
            during_post = await engine.http.post("/api/orders/execute", json=MARKET_ORDER)
            during_health = await engine.http.get("/health")
            await asyncio.sleep(1.5)  # the outage lasts past the venues' answers, whose appends fail
            database.restore()

            rest, close_code = await engine.stream(order_ids[0], after_version=seen[-1]["version"])
            results = await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
            streams = [await engine.services.store.read_stream(order_id) for order_id in order_ids]
            listed = await engine.http.get("/api/orders", params={"limit": 200})

    assert closed_with == 1011
    assert during_post.status_code == 503 and during_post.json()["error"] == "unavailable"
    assert during_health.status_code == 503 and during_health.json()["dependencies"]["database"] != "up"
    assert close_code == 1000 and seen + rest == results[0][0]
    for stream in streams:
        assert [r.version for r in stream] == list(range(1, len(stream) + 1))
        assert sum(isinstance(r.event, (OrderConfirmed, OrderFailed)) for r in stream) == 1
    assert len(listed.json()["orders"]) == 4, "the 503 submission created nothing"


async def test_redis_going_away_and_coming_back_mid_flight_loses_no_order(postgres_url, redis_url):
    host_port_db = redis_url.removeprefix("redis://")
    host_port, database = host_port_db.split("/")
    async with DroppableProxy(host_port) as cache_server:
        proxied = f"redis://{cache_server.url.removeprefix('http://')}/{database}"
        backend = {"database_url": postgres_url, "redis_url": proxied}
        async with running_engine(engine_settings(backend, **SLOW)) as engine:
            order_ids = await asyncio.gather(*(engine.submit() for _ in range(12)))
            url = f"{engine.ws_base}/api/orders/execute?orderId={order_ids[0]}"
            async with websockets.connect(url) as socket:
                while msgspec.json.decode(await socket.recv())["status"] != "submitted":
                    pass
            cache_server.drop()  # Redis restarts: every connection is cut, new ones refused for a while
            await asyncio.sleep(1.5)
            cache_server.restore()
            # Well before a queued marker (120 s) would let the recovery sweep find a dropped delivery.
            async with asyncio.timeout(30):
                results = await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
            streams = [await engine.services.store.read_stream(order_id) for order_id in order_ids]

    assert all(code == 1000 for _, code in results)
    for stream in streams:
        assert [r.version for r in stream] == list(range(1, len(stream) + 1))
        assert sum(isinstance(r.event, (OrderConfirmed, OrderFailed)) for r in stream) == 1
