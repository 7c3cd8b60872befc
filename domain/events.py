"""Every fact the engine records about an order: small immutable records, named in the past tense.

This module is the one place that lists them all (`OrderEvent`). On the wire and in the log an event is
a JSON object tagged by `type`, with its fields in camelCase.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
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
    """One pool's offer for the whole order, as the pool's maths computes it (fees and price impact in).

    Prices are whole `tokenOut` per whole `tokenIn`; amounts out are base units (`amount_out_raw`) and the
    same value in whole tokens (`amount_out`)."""

    venue: str
    pool: str
    price: Decimal  # the pool's spot price before the swap, before fees
    fee_bps: Decimal  # the fee taken from the input, in basis points of it
    effective_price: Decimal  # amount_out / amount_in: after fees and price impact
    amount_out: Decimal
    amount_out_raw: int
    price_impact_bps: Decimal  # how far the average price before fees falls short of the spot price


class RouteLeg(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One pool's share of the order, as Jupiter's `routePlan` gives it (`percent` of `amountIn`)."""

    venue: str
    pool: str
    percent: int
    amount_in: Decimal
    amount_in_raw: int
    amount_out: Decimal
    amount_out_raw: int


class LeftOut(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A venue that gave no quote for this attempt (it failed or did not answer in time), and why."""

    venue: str
    reason: str


class Fill(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What one leg of the landed transaction swapped."""

    venue: str
    pool: str
    amount_in: Decimal
    amount_in_raw: int
    amount_out: Decimal
    amount_out_raw: int


class OrderSubmitted(Event, frozen=True):
    # 1: before limit and sniper orders, no order_type; 2: amount_in a float, no amount_in_raw
    SCHEMA_VERSION: ClassVar[int] = 3

    order_type: OrderType
    token_in: str
    token_out: str
    amount_in: Decimal
    amount_in_raw: int
    slippage_bps: int


class TriggerArmed(Event, frozen=True):
    """The order waits for its trigger; either kind expires at `expires_at` if it has not fired by then.

    A limit order (the limit's fields set) fires once the best route for its whole `amountIn` (fees and
    price impact in) pays at least `taking_amount_raw`, the floor it never executes below; `limit_price` is
    the same limit as whole tokenOut per whole tokenIn. A sniper order (the launch's fields set) fires when
    the first pool of tokenOut (`token_out_decimals` its precision) holds at least `min_liquidity_raw` of
    tokenIn, if the token passes the checks, within `max_delay_ms` of the pool's creation."""

    limit_price: Decimal | None = None
    taking_amount: Decimal | None = None
    taking_amount_raw: int | None = None
    token_out_decimals: int | None = None
    min_liquidity: Decimal | None = None
    min_liquidity_raw: int | None = None
    max_delay_ms: int | None = None
    expires_at: datetime | None = None


class TriggerFired(Event, frozen=True):
    """The quote that fired the order: the route it found for the whole `amountIn`, paying `amount_out_raw`
    (at least the limit) at `price` (whole tokenOut per whole tokenIn). The order then runs as a market
    order, routed afresh, its limit as the transaction's floor."""

    price: Decimal
    amount_out: Decimal
    amount_out_raw: int
    route_plan: tuple[RouteLeg, ...]
    # A sniper order with maxDelayMs: its token's launch plus that delay. An attempt that would start after
    # it ends the order failed instead: a retry must not buy later than its owner allowed.
    buy_by: datetime | None = None


class OrderCancelled(Event, frozen=True):
    """Its client cancelled the order while it was waiting."""

    reason: str


class OrderExpired(Event, frozen=True):
    """The order was still waiting at `expires_at`."""

    expires_at: datetime


class RoutingStarted(Event, frozen=True):
    attempt: int


class VenueSelected(Event, frozen=True):
    """The routing decision: every pool's quote, the route taken (one leg, or a split across pools) and the
    venues left out of this attempt. `selected_venue` is the venue of the largest leg."""

    SCHEMA_VERSION: ClassVar[int] = 2  # 1: float quotes, one per venue, no route plan

    quotes: tuple[Quote, ...]
    selected_venue: str
    route_plan: tuple[RouteLeg, ...]
    amount_out: Decimal  # what the route plan pays out, all legs together
    amount_out_raw: int
    left_out: tuple[LeftOut, ...] = ()


class TransactionBuilt(Event, frozen=True):
    """The transaction: one swap instruction per leg (wSOL wrapped and unwrapped around them), and the least
    it may pay out (the route's amount less the slippage allowed) before the chain refuses it."""

    SCHEMA_VERSION: ClassVar[int] = 2  # 1: a float min_amount_out

    venue: str
    instructions: tuple[str, ...]
    min_amount_out: Decimal
    min_amount_out_raw: int


class TransactionSubmitted(Event, frozen=True):
    venue: str
    client_tx_id: str  # the chain deduplicates on it, as on a signature


class OrderConfirmed(Event, frozen=True):
    """The transaction landed: what it paid out in all (`amount_out`) and per leg (`fills`);
    `execution_price` is amount_out / amount_in, whole tokens."""

    SCHEMA_VERSION: ClassVar[int] = 2  # 1: float amounts, no fills

    venue: str
    tx_hash: str
    execution_price: Decimal
    amount_out: Decimal
    amount_out_raw: int
    fills: tuple[Fill, ...]


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
    | TriggerArmed
    | TriggerFired
    | OrderCancelled
    | OrderExpired
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
