"""Hostile WebSocket clients: garbage parameters, stray and oversized frames, thousands of dropped
connections. The server answers each with a clean close, keeps serving, and gives everything back."""

from __future__ import annotations

import asyncio
import contextlib

import websockets

from tests.harness import engine_settings, running_engine

SLOW = {"mock_execution_delay_ms_min": 3000, "mock_execution_delay_ms_max": 3000}


async def close_code_of(url: str) -> int | None:
    async with websockets.connect(url, max_size=None) as socket:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await socket.recv()
    return socket.close_code


async def test_garbage_query_strings_close_with_4400_or_4404(sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        order_id = await engine.submit()
        base = f"{engine.ws_base}/api/orders"
        cases = {
            f"{base}/execute": 4400,
            f"{base}/execute?orderId=%00%ff%fe": 4400,
            f"{base}/execute?orderId={'a' * 5000}": 4400,
            f"{base}/execute?orderId={order_id}&afterVersion=-5": 4400,
            f"{base}/execute?orderId={order_id}&afterVersion=1e3": 4400,
            f"{base}/execute?orderId=00000000-0000-0000-0000-000000000000": 4404,
            f"{base}/stream?afterPosition=x": 4400,
            f"{base}/stream?afterPosition=99999999": 4404,
        }
        codes = {url: await close_code_of(url) for url in cases}
        health = await engine.http.get("/health")

    assert codes == cases
    assert health.status_code == 200


async def test_stray_text_and_binary_frames_are_ignored_and_oversized_ones_refused(sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        order_id = await engine.submit()
        url = f"{engine.ws_base}/api/orders/execute?orderId={order_id}"
        received = []
        async with websockets.connect(url) as socket:
            await socket.send("hello")
            await socket.send(b"\x00\xff" * 100)
            async for raw in socket:
                received.append(raw)
        async with websockets.connect(url) as socket:
            await socket.send(b"x" * 200_000)  # over the server's 64 KiB frame limit
            with contextlib.suppress(websockets.ConnectionClosed):
                while True:
                    await socket.recv()
        oversized_close = socket.close_code
        after, code = await engine.stream(order_id)
        health = await engine.http.get("/health")

    assert len(received) == len(after) and code == 1000
    assert oversized_close == 1009
    assert health.status_code == 200


async def test_thousands_of_dropped_connections_leave_no_subscription_or_task_behind(backend):
    async with running_engine(engine_settings(backend, **SLOW)) as engine:
        feed = engine.services.feed
        order_id = await engine.submit()
        baseline_tasks = len(asyncio.all_tasks())

        async def open_and_drop(n: int) -> None:
            path = f"execute?orderId={order_id}" if n % 2 else "stream"
            async with websockets.connect(f"{engine.ws_base}/api/orders/{path}") as socket:
                await socket.recv()  # subscribed and replaying: now drop it mid-stream

        for wave in range(10):
            await asyncio.gather(*(open_and_drop(wave * 200 + n) for n in range(200)))
        async with asyncio.timeout(10):  # the server notices each drop on its own schedule
            while feed.subscriber_count or len(asyncio.all_tasks()) > baseline_tasks:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        messages, code = await engine.stream(order_id)

    assert feed.subscriber_count == 0
    assert code == 1000 and messages[-1]["type"] == "OrderConfirmed"
