"""The event store's interface: what commands, projections and the feed may ask of the log."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import msgspec

from domain.events import Event


class LogPosition(msgspec.Struct, frozen=True, order=True, array_like=True):
    """Where a follower of the whole log stands.

    The log is followed in (transaction_id, position) order. In PostgreSQL `transaction_id` is the appending
    transaction's id, and a follower only reads transactions older than every one of our database still
    running, so an event whose transaction commits late is never passed over. SQLite has one writer at a
    time, so there `transaction_id` is always 0 and the position alone orders the log.
    """

    transaction_id: int = 0
    position: int = 0

    @property
    def resume_token(self) -> str:
        """This position as a string that compares like the position itself: two fixed-width lowercase hex
        numbers, `"<transaction_id:016x>-<position:016x>"`, so along the all-orders stream each message's
        token is greater than the one before, as strings and as positions."""
        return f"{self.transaction_id:016x}-{self.position:016x}"

    @classmethod
    def from_resume_token(cls, token: str) -> LogPosition:
        """The position a `resume_token` names; ValueError if `token` is not one (`RESUME_TOKEN_PATTERN`)."""
        if _RESUME_TOKEN.fullmatch(token) is None:
            raise ValueError(f"not a resume token: {token!r}")
        transaction_id, position = (int(part, 16) for part in token.split("-"))
        return cls(transaction_id, position)


LOG_START = LogPosition()
# The largest version and position every store can hold (PostgreSQL `integer` and `bigint` columns): a
# reader asked for more would have the database refuse the number. Transaction ids (xid8) stay below it too.
MAX_VERSION = 2**31 - 1
MAX_POSITION = 2**63 - 1
# Two 16-digit lowercase hex numbers, each at most MAX_POSITION (a first digit of 0-7): exactly the tokens a
# log can hand out, so a client can check one against the published pattern alone.
RESUME_TOKEN_PATTERN = "^[0-7][0-9a-f]{15}-[0-7][0-9a-f]{15}$"
_RESUME_TOKEN = re.compile(RESUME_TOKEN_PATTERN)


class HorizonHolder(msgspec.Struct, frozen=True, kw_only=True):
    """The oldest running transaction of our database: followers see no event appended after it began."""

    pid: int  # its PostgreSQL backend process id (`pg_stat_activity.pid`)
    transaction_age_s: float  # how long it has been open, in seconds
    state: str | None  # `pg_stat_activity.state`: "active", "idle in transaction", ...


class ReadHorizon(msgspec.Struct, frozen=True, kw_only=True):
    """How far behind the log the followers' view is held, and by whom (nothing, on SQLite)."""

    held_back_events: int = 0  # committed events that followers may not read yet
    holder: HorizonHolder | None = None

    def describe(self) -> str:
        """One line for people: `"12 events not yet visible to followers; oldest open transaction: ..."`."""
        line = f"{self.held_back_events} events not yet visible to followers"
        if self.holder is not None:
            line += (
                f"; oldest open transaction: PostgreSQL process {self.holder.pid}"
                f" ({self.holder.state or 'state unknown'}), open {self.holder.transaction_age_s:.0f} s"
            )
        return line


class RecordedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the log holds it: where it stands, when it was recorded, and why."""

    order_id: str
    version: int
    event: Event
    recorded_at: datetime
    log_position: LogPosition
    metadata: dict[str, Any] = {}

    @property
    def correlation_id(self) -> str:
        """The request this event's order came from (`X-Request-ID`), the order's id when none was given:
        every later event of the order is recorded with its first event's."""
        return str(self.metadata.get("correlationId", self.order_id))


class ConcurrencyConflict(Exception):
    """Another writer appended to the order since its version was read."""

    def __init__(self, order_id: str, expected_version: int) -> None:
        super().__init__(f"order {order_id} is past version {expected_version}")
        self.order_id = order_id
        self.expected_version = expected_version


class StoreUnavailable(Exception):
    """The database cannot be reached (refused, dropped mid-statement, no pooled connection free in time).

    Nothing was done that the caller must know about: an append that raises it stored nothing, so the
    request can be retried. The SQL adapters raise it for every driver's way of saying so, so that callers
    (the API's 503 and 1011) never look at a driver's exceptions."""


@runtime_checkable  # Litestar checks the types of injected dependencies
class EventStore(Protocol):
    """The log. Any method may raise StoreUnavailable when the log's database cannot be reached."""

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
        """How many committed events a follower at `after` has still to apply (for progress and lag),
        including those it may not read yet (see `read_horizon`)."""
        ...

    async def read_horizon(self) -> ReadHorizon:
        """What holds followers back now: committed events behind a running transaction, and the oldest
        running transaction of our database."""
        ...

    async def log_position(self, position: int) -> LogPosition | None:
        """The full log position of the event stored at `position`, or None if there is none."""
        ...

    async def ping(self) -> None:
        """Return once the log's database answers; raise StoreUnavailable if it does not."""
        ...
