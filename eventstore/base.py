"""The event store's interface: what commands, projections and the feed may ask of the log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import msgspec

from domain.events import Event


class LogPosition(msgspec.Struct, frozen=True, order=True, array_like=True):
    """Where a follower of the whole log stands.

    The log is followed in (commit_id, position) order. In PostgreSQL `commit_id` is the appending
    transaction's id, and a follower only reads transactions older than every one still running, so an
    event whose transaction commits late is never passed over. SQLite has one writer at a time, so
    there `commit_id` is always 0 and the position alone orders the log.
    """

    commit_id: int = 0
    position: int = 0


LOG_START = LogPosition()
# The largest version and position every store can hold (PostgreSQL `integer` and `bigint` columns): a
# reader asked for more would have the database refuse the number.
MAX_VERSION = 2**31 - 1
MAX_POSITION = 2**63 - 1


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the log holds it: where it stands, when it was recorded, and why."""

    order_id: str
    version: int
    event: Event
    recorded_at: datetime
    log_position: LogPosition
    metadata: dict[str, Any] = {}


class ConcurrencyConflict(Exception):
    """Another writer appended to the order since its version was read."""

    def __init__(self, order_id: str, expected_version: int) -> None:
        super().__init__(f"order {order_id} is past version {expected_version}")
        self.order_id = order_id
        self.expected_version = expected_version


@runtime_checkable  # Litestar checks the types of injected dependencies
class EventStore(Protocol):
    async def append(
        self,
        order_id: str,
        events: Sequence[Event],
        expected_version: int,
        metadata: dict[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        """Append after `expected_version`, or raise ConcurrencyConflict and store nothing."""
        ...

    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        """One order's events after `after_version`, in version order."""
        ...

    async def read_all(self, after: LogPosition, limit: int) -> list[RecordedEvent]:
        """Events of every order after `after`, in the order a follower must apply them."""
        ...

    async def count_after(self, after: LogPosition) -> int:
        """How many events a follower at `after` has still to read (for progress and lag)."""
        ...

    async def log_position(self, position: int) -> LogPosition | None:
        """The full log position of the event stored at `position`, or None if there is none."""
        ...
