"""Every fact the engine records about an order: small immutable records, named in the past tense.

This module is the one place that lists them all (`OrderEvent`). On the wire and in the log an event is
a JSON object tagged by `type`, with its fields in camelCase.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from domain.order_type import OrderType


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True, rename="camel"):
    """Base of all order events; the class name is the tag stored as `type`.

    `SCHEMA_VERSION` is stored with every event; when an event's shape changes it goes up by one, and an
    upcaster (eventstore/upcasting.py) turns the older shape into the current one as the log is read.
    """

    SCHEMA_VERSION: ClassVar[int] = 1


class Quote(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One venue's offer for the whole order, fees and price impact included."""

    venue: str
    price: float  # token_out per token_in before fees
    fee_bps: int
    effective_price: float  # token_out per token_in after fees and price impact
    amount_out: float


class OrderSubmitted(Event, frozen=True):
    SCHEMA_VERSION: ClassVar[int] = 2  # version 1, from before limit and sniper orders, had no order_type

    order_type: OrderType
    token_in: str
    token_out: str
    amount_in: float
    slippage_bps: int


class RoutingStarted(Event, frozen=True):
    attempt: int


class VenueSelected(Event, frozen=True):
    quotes: tuple[Quote, ...]
    selected_venue: str


class TransactionBuilt(Event, frozen=True):
    venue: str
    instructions: tuple[str, ...]
    min_amount_out: float


class TransactionSubmitted(Event, frozen=True):
    venue: str
    client_tx_id: str  # the venue deduplicates on it, as a chain does on a signature


class OrderConfirmed(Event, frozen=True):
    venue: str
    tx_hash: str
    execution_price: float
    amount_out: float


class ExecutionAttemptFailed(Event, frozen=True):
    attempt: int
    reason: str
    retry_in_ms: int


class ExecutionCrashed(Event, frozen=True):
    """A run of the order stopped on an error of the engine's own (a bug, not the venue's answer). Counted:
    the order runs again after `retry_in_ms`, and fails once the retry policy's crashed runs are used up."""

    attempt: int
    reason: str
    retry_in_ms: int


class OrderFailed(Event, frozen=True):
    reason: str
    attempts: int


OrderEvent = (
    OrderSubmitted
    | RoutingStarted
    | VenueSelected
    | TransactionBuilt
    | TransactionSubmitted
    | OrderConfirmed
    | ExecutionAttemptFailed
    | ExecutionCrashed
    | OrderFailed
)

EVENT_TYPES: dict[str, type[Event]] = {cls.__name__: cls for cls in OrderEvent.__args__}


def event_type(event: Event) -> str:
    return type(event).__name__
