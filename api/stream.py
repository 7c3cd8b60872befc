"""The per-order WebSocket: GET upgrade on the submit path, `?orderId=<uuid>[&afterVersion=N]`."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import msgspec
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect

from api.messages import event_message
from eventstore.base import EventStore
from projections.feed import OrderFeed

CLOSE_NORMAL = 1000
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404


@websocket("/api/orders/execute")
async def order_stream(
    socket: WebSocket, feed: NamedDependency[OrderFeed], store: NamedDependency[EventStore]
) -> None:
    """Every event of the order so far, then each new one, in version order; closes 1000 after the last."""
    await socket.accept()
    params = socket.query_params
    try:
        order_id = str(uuid.UUID(params.get("orderId", "")))
        after_version = int(params.get("afterVersion", "0"))
        if after_version < 0:
            raise ValueError
    except ValueError:
        await socket.close(CLOSE_BAD_REQUEST, "orderId must be a UUID and afterVersion an integer >= 0")
        return
    if not await store.read_stream(order_id, after_version=0):
        await socket.close(CLOSE_NOT_FOUND, "unknown order")
        return

    async def send_events() -> None:
        # aclosing: a client that leaves mid-stream gives its subscription back at once, not at GC.
        async with contextlib.aclosing(feed.follow(order_id, after_version)) as events:
            async for recorded in events:
                await socket.send_data(msgspec.json.encode(event_message(recorded)).decode())
        await socket.close(CLOSE_NORMAL)

    async def until_disconnect() -> None:
        # Frames from the client mean nothing here; reading them is how a disconnect is noticed.
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await socket.receive_data("text")

    sender = asyncio.create_task(send_events())
    watcher = asyncio.create_task(until_disconnect())
    try:
        await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, watcher):
            task.cancel()
        for task in (sender, watcher):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
