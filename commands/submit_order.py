"""Submit an order: check it and append `OrderSubmitted`, which the relay (`workers/relay.py`) hands to the
workers; or, for a limit or sniper order, append `TriggerArmed` with it and leave it to the trigger stage
(`commands/trigger_orders.py`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal

import msgspec

from commands.clock import SYSTEM_CLOCK, Clock
from domain.events import Event
from domain.order import Order, OrderUnprocessable
from domain.order_type import OrderType
from domain.tokens import Launch
from eventstore.base import ConcurrencyConflict, EventStore

log = logging.getLogger(__name__)

# Order ids of idempotent submissions are derived from the key, so that the event log's unique
# (order_id, version) key makes "one order per key" atomic: two racing repeats cannot both append.
IDEMPOTENT_ORDER_IDS = uuid.UUID("5b0c4a52-8f0e-4d6e-9d0a-1f2e3c4b5a69")

# A token as the chain shows it now (None: not announced), for sniper orders.
LaunchOf = Callable[[str], Awaitable[Launch | None]]


class SubmitOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_type: OrderType
    token_in: str
    token_out: str
    slippage_bps: int
    amount_in: Decimal | None = None  # whole tokens; or
    amount_in_raw: str | None = None  # base units, a string of digits
    # A limit order's limit, one of: tokenOut per tokenIn, whole tokenOut for amountIn, or that in base units.
    limit_price: Decimal | str | None = None
    taking_amount: Decimal | str | None = None
    taking_amount_raw: str | None = None
    expires_at: datetime | None = None
    # A sniper order's: the least tokenIn a pool must hold (whole tokens), the most time after the launch.
    min_liquidity: Decimal | str | None = None
    max_delay_ms: int | None = None
    idempotency_key: str | None = None
    correlation_id: str | None = None


class Submitted(msgspec.Struct, frozen=True):
    order_id: str
    created: bool  # False when an idempotent repeat found the order already there


# `submit_order` with its store (and look-up) bound, as the composition root hands it to the API.
SubmitOrderHandler = Callable[[SubmitOrder], Awaitable[Submitted]]


class IdempotencyKeyReused(Exception):
    """The key was first used for a different order."""


async def submit_order(
    command: SubmitOrder,
    store: EventStore,
    clock: Clock = SYSTEM_CLOCK,
    launch_of: LaunchOf | None = None,
) -> Submitted:
    """Raises `OrderRejected` (the rule broken, with its field; `OrderUnprocessable` for one the moment or
    the market breaks), `IdempotencyKeyReused`, and the store's errors (nothing appended). `launch_of` looks
    a sniper order's token up. Once appended, the order is the relay's to queue: nothing else can fail."""
    event = Order.submit(
        command.order_type,
        command.token_in,
        command.token_out,
        command.slippage_bps,
        amount_in=command.amount_in,
        amount_in_raw=command.amount_in_raw,
    )
    order_id = _order_id(command.idempotency_key)
    sniper = event.order_type is OrderType.SNIPER
    launch = await launch_of(event.token_out) if sniper and launch_of is not None else None
    try:
        armed = Order.arm(
            event,
            clock.now(),
            limit_price=command.limit_price,
            taking_amount=command.taking_amount,
            taking_amount_raw=command.taking_amount_raw,
            expires_at=command.expires_at,
            launch=launch,
            min_liquidity=command.min_liquidity,
            max_delay_ms=command.max_delay_ms,
        )
    except OrderUnprocessable:
        # What the moment or the market refuses now (an expiry past, a token launched since) may have been
        # accepted when the key was first used: a repeat still answers with that order.
        if command.idempotency_key is None or not (recorded := await store.read_stream(order_id)):
            raise
        if recorded[0].event != event:
            raise IdempotencyKeyReused(order_id) from None
        return Submitted(order_id, created=False)
    events: list[Event] = [event] if armed is None else [event, armed]
    metadata = {"correlationId": command.correlation_id or order_id}
    if command.idempotency_key is not None:
        metadata["idempotencyKey"] = command.idempotency_key
    try:
        await store.append(order_id, events, expected_version=0, metadata=metadata)
    except ConcurrencyConflict:
        return await _existing(order_id, events, store)
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
        }
        | ({} if armed is None or armed.limit_price is None else {"limit_price": str(armed.limit_price)}),
    )
    return Submitted(order_id, created=True)


def _order_id(idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENT_ORDER_IDS, idempotency_key))


async def _existing(order_id: str, events: list[Event], store: EventStore) -> Submitted:
    recorded = await store.read_stream(order_id)
    if [r.event for r in recorded[: len(events)]] != events:
        raise IdempotencyKeyReused(order_id)
    return Submitted(order_id, created=False)
