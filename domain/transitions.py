"""The order state machine: which event may follow which status, and the status it leads to."""

from __future__ import annotations

from domain.events import (
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    OrderCancelled,
    OrderConfirmed,
    OrderExpired,
    OrderFailed,
    OrderSubmitted,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    TriggerArmed,
    TriggerFired,
    VenueSelected,
)
from domain.status import OrderStatus

WAITING, PENDING, ROUTING, BUILDING, SUBMITTED = (
    OrderStatus.WAITING,
    OrderStatus.PENDING,
    OrderStatus.ROUTING,
    OrderStatus.BUILDING,
    OrderStatus.SUBMITTED,
)
IN_FLIGHT = frozenset({ROUTING, BUILDING, SUBMITTED})

# event type -> (statuses it may follow; None is "no order yet"), status after it
TRANSITIONS: dict[type[Event], tuple[frozenset[OrderStatus | None], OrderStatus]] = {
    OrderSubmitted: (frozenset({None}), PENDING),
    # The trigger stage: a limit or sniper order is armed as it is submitted, and waits until exactly one of
    # these ends the wait (the log's expected version lets only one of racing appends in).
    TriggerArmed: (frozenset({PENDING}), WAITING),
    TriggerFired: (frozenset({WAITING}), PENDING),
    OrderCancelled: (frozenset({WAITING}), OrderStatus.CANCELLED),
    OrderExpired: (frozenset({WAITING}), OrderStatus.EXPIRED),
    RoutingStarted: (frozenset({PENDING}), ROUTING),
    VenueSelected: (frozenset({ROUTING}), ROUTING),
    TransactionBuilt: (frozenset({ROUTING}), BUILDING),
    TransactionSubmitted: (frozenset({BUILDING}), SUBMITTED),
    # From pending too: an attempt whose run crashed before recording the answer may have landed after all.
    OrderConfirmed: (frozenset({SUBMITTED, PENDING}), OrderStatus.CONFIRMED),
    ExecutionAttemptFailed: (IN_FLIGHT, PENDING),
    ExecutionCrashed: (IN_FLIGHT | {PENDING}, PENDING),
    # From waiting too: a sniper order whose token fails its checks at launch.
    OrderFailed: (IN_FLIGHT | {PENDING, WAITING}, OrderStatus.FAILED),
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
