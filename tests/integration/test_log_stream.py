"""The all-orders WebSocket: every event of every order in log order, resumable from a token or a position."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from typing import Any

import msgspec
import websockets

from domain.events import RoutingStarted
from domain.order import Order
from tests.harness import engine_settings, running_engine


async def read_log_stream(ws_base: str, count: int, query: str = "") -> list[dict[str, Any]]:
    messages = []
    async with websockets.connect(f"{ws_base}/api/orders/stream{query}") as socket:
        while len(messages) < count:
            messages.append(msgspec.json.decode(await socket.recv()))
    return messages


async def test_log_stream_replays_then_follows_every_order_without_gap_or_duplicate(backend):
    async with running_engine(engine_settings(backend)) as engine:
        first = await engine.submit()
        first_messages, _ = await engine.stream(first)
        live = asyncio.create_task(read_log_stream(engine.ws_base, count=len(first_messages) + 3 * 6))
        others = await asyncio.gather(*(engine.submit() for _ in range(3)))
        await asyncio.gather(*(engine.stream(order_id) for order_id in others))
        received = await live
        resumed = await read_log_stream(
            engine.ws_base, count=len(received) - 4, query=f"?afterPosition={received[3]['position']}"
        )
        resumed_by_token = await read_log_stream(
            engine.ws_base, count=len(received) - 4, query=f"?afterToken={received[3]['resumeToken']}"
        )

    keys = [(m["orderId"], m["version"]) for m in received]
    assert len(set(keys)) == len(keys) == len(first_messages) + 18
    assert {order_id for order_id, _ in keys} == {first, *others}
    for order_id in {first, *others}:
        assert [v for o, v in keys if o == order_id] == [1, 2, 3, 4, 5, 6]
    assert received[: len(first_messages)] == [
        {**m, "position": received[i]["position"], "resumeToken": received[i]["resumeToken"]}
        for i, m in enumerate(first_messages)
    ]
    tokens = [m["resumeToken"] for m in received]
    assert all(a < b for a, b in itertools.pairwise(tokens))
    assert resumed == resumed_by_token == received[4:]


async def test_log_stream_refuses_bad_positions_and_tokens(backend):
    bad_requests = (
        "?afterPosition=-1",
        "?afterPosition=abc",
        "?afterToken=abc",
        "?afterToken=",
        "?afterToken=0000000000000000-000000000000000G",
        "?afterToken=0000000000000000-000000000000000A",  # upper case would not compare as the log does
        "?afterToken=0000000000000000-8000000000000000",  # beyond BIGINT
        "?afterToken=0000000000000000-0000000000000001&afterPosition=1",
    )
    async with running_engine(engine_settings(backend)) as engine:
        codes = {}
        for query in (*bad_requests, "?afterPosition=999999"):
            async with websockets.connect(f"{engine.ws_base}/api/orders/stream{query}") as socket:
                await socket.wait_closed()
                codes[query] = socket.close_code
    assert codes == {**dict.fromkeys(bad_requests, 4400), "?afterPosition=999999": 4404}


async def test_resume_tokens_strictly_increase_under_concurrent_writers_and_resume_exactly(
    postgres_url, redis_url
):
    """On PostgreSQL positions are handed out before commit, so concurrent writers commit them out of
    order; the stream runs in commit order, and its resume tokens must still only grow."""
    orders, appends_per_order = 100, 6
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend), worker=False, projector=False) as engine:
        store = engine.services.store
        total = orders * appends_per_order
        live = asyncio.create_task(read_log_stream(engine.ws_base, count=total))

        async def write_one_order() -> None:
            order_id = str(uuid.uuid4())
            await store.append(
                order_id, [Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")], expected_version=0
            )
            for version in range(1, appends_per_order):
                await store.append(order_id, [RoutingStarted(attempt=version)], expected_version=version)

        await asyncio.gather(*(write_one_order() for _ in range(orders)))
        received = await live
        cut_points = sorted({0, 1, total // 2, total - 2, *random.Random(3).sample(range(total - 1), 8)})
        resumed = {
            cut: await read_log_stream(
                engine.ws_base, count=total - cut - 1, query=f"?afterToken={received[cut]['resumeToken']}"
            )
            for cut in cut_points
        }

    keys = [(m["orderId"], m["version"]) for m in received]
    assert len(set(keys)) == total
    tokens = [m["resumeToken"] for m in received]
    assert all(a < b for a, b in itertools.pairwise(tokens)), "tokens must only grow"
    for cut, messages in resumed.items():
        assert messages == received[cut + 1 :], f"resuming after message {cut}"
