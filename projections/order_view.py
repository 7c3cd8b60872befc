"""An order as readers see it, and how each event changes that view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from domain.events import OrderConfirmed, OrderFailed, OrderSubmitted, RoutingStarted, VenueSelected
from domain.pairs import QUOTE_PREFERENCE
from domain.routing import BPS
from domain.transitions import status_after
from eventstore.base import RecordedEvent

EXECUTION_PRICE = (
    "tokenOut received per tokenIn spent: the swap's direction, so 151.6 for SOL → USDC and 0.0066 for "
    "USDC → SOL on the same market. To read it in the pair's one orientation, quote token per base token "
    f"(`USDC per SOL` both ways; the quote is the first of {', '.join(QUOTE_PREFERENCE)} in the pair, as "
    "the OrderSubmitted message's `pair` says): as is when tokenIn is the base, 1 / executionPrice when "
    "tokenIn is the quote."
)


class OrderView(msgspec.Struct, kw_only=True, rename="camel"):
    order_id: str
    status: str
    order_type: str
    token_in: str
    token_out: str
    amount_in: float
    slippage_bps: int
    selected_venue: str | None = None
    execution_price: Annotated[float | None, msgspec.Meta(description=EXECUTION_PRICE)] = None
    amount_out: float | None = None
    tx_hash: str | None = None
    attempts: int = 0
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    # How much more the chosen venue's quote paid out than the other venue's, in basis points.
    price_improvement_bps: float | None = None


def evolve(view: OrderView | None, recorded: RecordedEvent) -> OrderView:
    """The view after one more event (`view` is None before the order's first event)."""
    event = recorded.event
    if isinstance(event, OrderSubmitted):
        view = OrderView(
            order_id=recorded.order_id,
            status="",
            order_type=event.order_type,
            token_in=event.token_in,
            token_out=event.token_out,
            amount_in=event.amount_in,
            slippage_bps=event.slippage_bps,
            created_at=recorded.recorded_at,
            updated_at=recorded.recorded_at,
            version=0,
        )
    assert view is not None, f"order {recorded.order_id} does not start with OrderSubmitted"
    match event:
        case RoutingStarted():
            view.attempts = event.attempt
        case VenueSelected():
            view.selected_venue = event.selected_venue
            view.price_improvement_bps = price_improvement_bps(event)
        case OrderConfirmed():
            view.selected_venue, view.tx_hash = event.venue, event.tx_hash
            view.execution_price, view.amount_out = event.execution_price, event.amount_out
        case OrderFailed():
            view.failure_reason = event.reason
    view.status = status_after(event)
    view.version = recorded.version
    view.updated_at = recorded.recorded_at
    return view


def fold(events: list[RecordedEvent]) -> OrderView | None:
    view = None
    for recorded in events:
        view = evolve(view, recorded)
    return view


def price_improvement_bps(decision: VenueSelected) -> float | None:
    chosen = next(q for q in decision.quotes if q.venue == decision.selected_venue)
    others = [q.amount_out for q in decision.quotes if q.venue != decision.selected_venue]
    if not others or max(others) <= 0:
        return None
    return (chosen.amount_out / max(others) - 1) * BPS
