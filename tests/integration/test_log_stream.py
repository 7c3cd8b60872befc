"""The all-orders WebSocket: every event of every order in log order, resumable from a position."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import websockets

from tests.harness import engine_settings, running_engine


async def read_log_stream(
    ws_base: str, count: int, after_position: int | None = None
) -> list[dict[str, Any]]:
    query = f"?afterPosition={after_position}" if after_position is not None else ""
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
            engine.ws_base, count=len(received) - 4, after_position=received[3]["position"]
        )

    keys = [(m["orderId"], m["version"]) for m in received]
    assert len(set(keys)) == len(keys) == len(first_messages) + 18
    assert {order_id for order_id, _ in keys} == {first, *others}
    for order_id in {first, *others}:
        assert [v for o, v in keys if o == order_id] == [1, 2, 3, 4, 5, 6]
    assert received[: len(first_messages)] == [
        {**m, "position": received[i]["position"]} for i, m in enumerate(first_messages)
    ]
    assert resumed == received[4:]


async def test_log_stream_refuses_bad_positions(backend):
    async with running_engine(engine_settings(backend)) as engine:
        codes = []
        for query in ("?afterPosition=-1", "?afterPosition=abc", "?afterPosition=999999"):
            async with websockets.connect(f"{engine.ws_base}/api/orders/stream{query}") as socket:
                await socket.wait_closed()
                codes.append(socket.close_code)
    assert codes == [4400, 4400, 4404]
