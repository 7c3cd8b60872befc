"""Submit an order: check it, append `OrderSubmitted`, hand it to the workers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import msgspec

from domain.events import OrderSubmitted
from domain.order import Order
from domain.order_type import OrderType
from eventstore.base import ConcurrencyConflict, EventStore

log = logging.getLogger(__name__)

# Order ids of idempotent submissions are derived from the key, so that the event log's unique
# (order_id, version) key makes "one order per key" atomic: two racing repeats cannot both append.
IDEMPOTENT_ORDER_IDS = uuid.UUID("5b0c4a52-8f0e-4d6e-9d0a-1f2e3c4b5a69")

Enqueue = Callable[[str], Awaitable[None]]


class SubmitOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_type: OrderType
    token_in: str
    token_out: str
    slippage_bps: int
    amount_in: Decimal | None = None  # whole tokens; or
    amount_in_raw: str | None = None  # base units, a string of digits
    idempotency_key: str | None = None
    correlation_id: str | None = None


class Submitted(msgspec.Struct, frozen=True):
    order_id: str
    created: bool  # False when an idempotent repeat found the order already there


class IdempotencyKeyReused(Exception):
    """The key was first used for a different order."""


async def submit_order(command: SubmitOrder, store: EventStore, enqueue: Enqueue) -> Submitted:
    event = Order.submit(
        command.order_type,
        command.token_in,
        command.token_out,
        command.slippage_bps,
        amount_in=command.amount_in,
        amount_in_raw=command.amount_in_raw,
    )
    order_id = _order_id(command.idempotency_key)
    metadata = {"correlationId": command.correlation_id or order_id}
    if command.idempotency_key is not None:
        metadata["idempotencyKey"] = command.idempotency_key
    try:
        await store.append(order_id, [event], expected_version=0, metadata=metadata)
    except ConcurrencyConflict:
        return await _existing(order_id, event, store)
    log.info(
        "order submitted",
        extra={
            "order_id": order_id,
            "correlation_id": metadata["correlationId"],
            "token_in": event.token_in,
            "token_out": event.token_out,
            "amount_in": str(event.amount_in),
            "amount_in_raw": event.amount_in_raw,
            "slippage_bps": event.slippage_bps,
        },
    )
    try:
        await enqueue(order_id)
    except Exception:  # the log is the outbox: the recovery sweep enqueues it again
        log.exception("order %s appended but not enqueued; the recovery sweep will pick it up", order_id)
    return Submitted(order_id, created=True)


def _order_id(idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENT_ORDER_IDS, idempotency_key))


async def _existing(order_id: str, event: OrderSubmitted, store: EventStore) -> Submitted:
    first = (await store.read_stream(order_id))[0]
    if first.event != event:
        raise IdempotencyKeyReused(order_id)
    return Submitted(order_id, created=False)
