"""The event store in memory: the same contract as the SQL store, for unit tests of commands and handlers.

As cosmicpython's `FakeRepository`: no server, microseconds per call, and the same expected-version rule
(`tests/integration/test_event_store.py` runs one contract suite against it, SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from domain.events import Event
from eventstore.base import ConcurrencyConflict, LogPosition, ReadHorizon, RecordedEvent
from eventstore.signal import AppendSignal


def _utc_now() -> datetime:
    return datetime.now(UTC)


class InMemoryEventStore:
    """One process's log in a list. Appends are atomic because nothing awaits between the version check and
    the write; like SQLite, it has one writer at a time, so the position alone orders the log (transaction
    id 0)."""

    def __init__(self, signal: AppendSignal | None = None, clock: Callable[[], datetime] = _utc_now) -> None:
        self.signal = signal
        self.clock = clock  # what `recorded_at` says: tests of time-driven behaviour set it
        self._log: list[RecordedEvent] = []  # in position order; position n is self._log[n - 1]
        self._streams: dict[str, list[RecordedEvent]] = {}

    async def append(
        self,
        order_id: str,
        events: Sequence[Event],
        expected_version: int,
        metadata: dict[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        stream = self._streams.setdefault(order_id, [])
        if len(stream) > expected_version:  # as the SQL store's unique (order_id, version) key refuses it
            raise ConcurrencyConflict(order_id, expected_version)
        recorded_at = self.clock()
        recorded = [
            RecordedEvent(
                order_id=order_id,
                version=expected_version + offset,
                event=event,
                recorded_at=recorded_at,
                log_position=LogPosition(0, len(self._log) + offset),
                metadata=dict(metadata or {}),
            )
            for offset, event in enumerate(events, start=1)
        ]
        self._log += recorded
        stream += recorded
        if self.signal is not None:
            await self.signal.publish(order_id)
        return recorded

    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        return [r for r in self._streams.get(order_id, []) if r.version > after_version]

    async def read_all(self, after: LogPosition, limit: int) -> list[RecordedEvent]:
        return self._log[after.position : after.position + limit]

    async def count_after(self, after: LogPosition) -> int:
        return max(0, len(self._log) - after.position)

    async def log_position(self, position: int) -> LogPosition | None:
        return self._log[position - 1].log_position if 0 < position <= len(self._log) else None

    async def read_horizon(self) -> ReadHorizon:
        return ReadHorizon()  # every append is visible as soon as it returns

    async def ping(self) -> None:
        return None  # always here: it is this process's memory
