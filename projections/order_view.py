"""An order as readers see it, and how each event changes that view."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Context, Decimal
from typing import Annotated, Any

import msgspec

from domain.events import (
    Event,
    OrderConfirmed,
    OrderFailed,
    OrderSubmitted,
    RouteLeg,
    RoutingStarted,
    TransactionBuilt,
    TriggerArmed,
    VenueSelected,
)
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


class RouteLegView(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One leg of the route as readers see it: the event's `RouteLeg` with its base units as strings of
    digits, as every `...Raw` amount of the read model."""

    venue: str
    pool: str
    percent: int
    amount_in: Decimal
    amount_in_raw: str
    amount_out: Decimal
    amount_out_raw: str

    @classmethod
    def of(cls, leg: RouteLeg) -> RouteLegView:
        return cls(
            venue=leg.venue,
            pool=leg.pool,
            percent=leg.percent,
            amount_in=leg.amount_in,
            amount_in_raw=str(leg.amount_in_raw),
            amount_out=leg.amount_out,
            amount_out_raw=str(leg.amount_out_raw),
        )


class OrderView(msgspec.Struct, kw_only=True, rename="camel"):
    """An order as readers see it. Amounts twice: exact decimal values of whole tokens (JSON numbers) and
    base units (`...Raw`, strings of digits)."""

    order_id: str
    status: str
    order_type: str
    token_in: str
    token_out: str
    amount_in: Decimal
    amount_in_raw: str
    slippage_bps: int
    selected_venue: str | None = None  # the venue of the route's largest leg
    route_plan: tuple[RouteLegView, ...] | None = None
    min_amount_out: Decimal | None = None
    min_amount_out_raw: str | None = None
    execution_price: Annotated[Decimal | None, msgspec.Meta(description=EXECUTION_PRICE)] = None
    amount_out: Decimal | None = None
    amount_out_raw: str | None = None
    tx_hash: str | None = None
    attempts: int = 0
    failure_reason: str | None = None
    created_at: datetime
    updated_at: datetime
    version: int
    # How much more the route paid out than the best quote of any other venue, in basis points.
    price_improvement_bps: Decimal | None = None
    # Limit orders: the limit, whole tokenOut per tokenIn and as the least amount out for amountIn; expiry.
    limit_price: Decimal | None = None
    taking_amount: Decimal | None = None
    taking_amount_raw: str | None = None
    expires_at: datetime | None = None
    # Sniper orders: tokenOut's decimals (a token launched after the engine's list), the least tokenIn a
    # pool must hold (whole tokens and base units), the most milliseconds after the launch it may buy.
    token_out_decimals: int | None = None
    min_liquidity: Decimal | None = None
    min_liquidity_raw: str | None = None
    max_delay_ms: int | None = None


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
            amount_in_raw=str(event.amount_in_raw),
            slippage_bps=event.slippage_bps,
            created_at=recorded.recorded_at,
            updated_at=recorded.recorded_at,
            version=0,
        )
    assert view is not None, f"order {recorded.order_id} does not start with OrderSubmitted"
    if (change := _CHANGES.get(type(event))) is not None:
        change(view, event)
    view.status = status_after(event)
    view.version = recorded.version
    view.updated_at = recorded.recorded_at
    return view


def _armed(view: OrderView, event: TriggerArmed) -> None:
    view.limit_price, view.taking_amount = event.limit_price, event.taking_amount
    view.taking_amount_raw, view.expires_at = _digits(event.taking_amount_raw), event.expires_at
    view.token_out_decimals, view.max_delay_ms = event.token_out_decimals, event.max_delay_ms
    view.min_liquidity, view.min_liquidity_raw = event.min_liquidity, _digits(event.min_liquidity_raw)


def _routing(view: OrderView, event: RoutingStarted) -> None:
    view.attempts = event.attempt


def _routed(view: OrderView, event: VenueSelected) -> None:
    view.selected_venue = event.selected_venue
    view.route_plan = tuple([RouteLegView.of(leg) for leg in event.route_plan])
    view.price_improvement_bps = price_improvement_bps(event)


def _built(view: OrderView, event: TransactionBuilt) -> None:
    view.min_amount_out = event.min_amount_out
    view.min_amount_out_raw = str(event.min_amount_out_raw)


def _confirmed(view: OrderView, event: OrderConfirmed) -> None:
    view.selected_venue, view.tx_hash = event.venue, event.tx_hash
    view.execution_price, view.amount_out = event.execution_price, event.amount_out
    view.amount_out_raw = str(event.amount_out_raw)


def _failed(view: OrderView, event: OrderFailed) -> None:
    view.failure_reason = event.reason


# What each event changes in the view besides its status, version and time; the others change only those.
# By the event's class: one lookup, where a `match` tried the cases one by one (an event that fell through
# them all, as TransactionSubmitted does, took three times as long to fold).
_CHANGES: dict[type[Event], Callable[[OrderView, Any], None]] = {
    TriggerArmed: _armed,
    RoutingStarted: _routing,
    VenueSelected: _routed,
    TransactionBuilt: _built,
    OrderConfirmed: _confirmed,
    OrderFailed: _failed,
}


def _digits(raw: int | None) -> str | None:
    """Base units as the read model gives them (a string of digits), or None for a field the order has not."""
    return None if raw is None else str(raw)


def fold(events: list[RecordedEvent]) -> OrderView | None:
    view = None
    for recorded in events:
        view = evolve(view, recorded)
    return view


# The ratio's precision, whatever the caller's context (a context of its own: `localcontext()` copies and
# swaps the thread's context at every call, half of this function's time in a rebuild).
_RATIO = Context(prec=28)
_HUNDREDTH = Decimal("0.01")


def price_improvement_bps(decision: VenueSelected) -> Decimal | None:
    """(route's amount out / best quote of another venue for the whole order - 1) in bps, to 0.01 bps."""
    selected = decision.selected_venue
    others = [q.amount_out_raw for q in decision.quotes if q.venue != selected]
    if not others or (best_other := max(others)) <= 0:
        return None
    ratio = _RATIO.divide(Decimal(decision.amount_out_raw), best_other)
    return ((ratio - 1) * BPS).quantize(_HUNDREDTH)
