"""Order statuses and the transition table every event must respect."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    WAITING = "waiting"  # a limit or sniper order, armed: waiting for its trigger
    PENDING = "pending"
    ROUTING = "routing"
    BUILDING = "building"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # by its client, while waiting
    EXPIRED = "expired"  # its expiresAt passed while waiting

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {OrderStatus.CONFIRMED, OrderStatus.FAILED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
)
