"""Cancel a waiting (limit or sniper) order: load, decide, append with the expected version."""

from __future__ import annotations

from domain.order import Order
from eventstore.base import ConcurrencyConflict, EventStore


class OrderNotFound(Exception):
    """No order has this id."""


async def cancel_order(order_id: str, store: EventStore, reason: str = "cancelled by its client") -> None:
    """Append `OrderCancelled`. Raises `OrderNotFound`, and `domain.order.NotWaiting` (with the order's
    status) when the order has fired or ended, or never waits (a market order): only one of a cancel, a
    fire and an expiry can follow the wait, whichever the log takes first."""
    while True:
        history = await store.read_stream(order_id)
        if not history:
            raise OrderNotFound(order_id)
        order = Order.from_events(order_id, [recorded.event for recorded in history])
        event = order.cancel(reason)
        metadata = {"correlationId": history[0].correlation_id}
        try:
            await store.append(order_id, [event], expected_version=order.version, metadata=metadata)
            return
        except ConcurrencyConflict:
            continue  # the order moved on meanwhile: read it again, and decide on what it is now
