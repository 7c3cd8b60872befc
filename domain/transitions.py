"""The order state machine: which event may follow which status, and the status it leads to."""

from __future__ import annotations

from domain.events import (
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    OrderConfirmed,
    OrderFailed,
    OrderSubmitted,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from domain.status import OrderStatus

PENDING, ROUTING, BUILDING, SUBMITTED = (
    OrderStatus.PENDING,
    OrderStatus.ROUTING,
    OrderStatus.BUILDING,
    OrderStatus.SUBMITTED,
)
IN_FLIGHT = frozenset({ROUTING, BUILDING, SUBMITTED})

# event type -> (statuses it may follow; None is "no order yet"), status after it
TRANSITIONS: dict[type[Event], tuple[frozenset[OrderStatus | None], OrderStatus]] = {
    OrderSubmitted: (frozenset({None}), PENDING),
    RoutingStarted: (frozenset({PENDING}), ROUTING),
    VenueSelected: (frozenset({ROUTING}), ROUTING),
    TransactionBuilt: (frozenset({ROUTING}), BUILDING),
    TransactionSubmitted: (frozenset({BUILDING}), SUBMITTED),
    # From pending too: an attempt whose run crashed before recording the answer may have landed after all.
    OrderConfirmed: (frozenset({SUBMITTED, PENDING}), OrderStatus.CONFIRMED),
    ExecutionAttemptFailed: (IN_FLIGHT, PENDING),
    ExecutionCrashed: (IN_FLIGHT | {PENDING}, PENDING),
    OrderFailed: (IN_FLIGHT | {PENDING}, OrderStatus.FAILED),
}


class InvalidTransition(Exception):
    """An event that cannot follow the order's current status."""

    def __init__(self, status: OrderStatus | None, event: Event) -> None:
        super().__init__(f"{type(event).__name__} cannot follow status {status or 'none'}")
        self.status = status
        self.event = event


def status_after(event: Event) -> OrderStatus:
    """The status an order has right after `event` (it depends on the event alone)."""
    return TRANSITIONS[type(event)][1]


def next_status(current: OrderStatus | None, event: Event) -> OrderStatus:
    allowed_from, to = TRANSITIONS[type(event)]
    if current not in allowed_from:
        raise InvalidTransition(current, event)
    return to
