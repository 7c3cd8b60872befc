"""The live feeds: one order's events for any number of subscribers per order, and the whole log.

A subscriber first registers for wake-ups, then reads the order's events from the log after the version it
already has, and reads again on every wake-up. Because it always reads the log by version, it can neither
skip an event (one appended during the replay is read on the next wake-up) nor repeat one. Subscribers of
the same order share one reader, so a wake-up costs one query per order, not one per subscriber.

The whole-log feed follows the log the way a projector does, from a log position, in log order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from domain.transitions import status_after
from eventstore.base import EventStore, LogPosition, RecordedEvent
from eventstore.signal import ANY_ORDER, AppendSignal

log = logging.getLogger(__name__)

LOG_BATCH = 500


class _WatchedOrder:
    def __init__(self, order_id: str, store: EventStore) -> None:
        self.order_id = order_id
        self.store = store
        self.events: list[RecordedEvent] = []  # versions 1..n, as far as read
        self.subscribers = 0
        self.appended = asyncio.Event()
        self._reading = asyncio.Lock()

    @property
    def ended(self) -> bool:
        return bool(self.events) and status_after(self.events[-1].event).is_terminal

    def wake(self) -> None:
        self.appended.set()
        self.appended = asyncio.Event()

    async def read_past(self, version: int) -> None:
        """Make sure every event the log has now is in `events`, if none past `version` is there yet."""
        async with self._reading:
            if len(self.events) <= version:
                self.events += await self.store.read_stream(self.order_id, after_version=len(self.events))


class LiveFeed:
    def __init__(self, store: EventStore, signal: AppendSignal, poll_interval_s: float = 1.0) -> None:
        self.store = store
        self.signal = signal
        self.poll_interval_s = poll_interval_s
        self._watched: dict[str, _WatchedOrder] = {}
        self._log_appended = asyncio.Event()
        self._log_subscribers = 0
        self._listener: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        """Clients following one order or the whole log, in this process."""
        return sum(watched.subscribers for watched in self._watched.values()) + self._log_subscribers

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def follow(self, order_id: str, after_version: int = 0) -> AsyncIterator[RecordedEvent]:
        """Every event of the order after `after_version`, then each new one, ending after the last."""
        watched = self._watched.get(order_id)
        if watched is None:
            watched = self._watched[order_id] = _WatchedOrder(order_id, self.store)
        watched.subscribers += 1
        try:
            sent = after_version
            while True:
                appended = watched.appended  # taken before reading, so no wake-up falls in between
                await watched.read_past(sent)
                for recorded in watched.events[sent:]:
                    yield recorded
                    sent = recorded.version
                if watched.ended:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(appended.wait(), self.poll_interval_s)
        finally:
            watched.subscribers -= 1
            if watched.subscribers == 0:
                self._watched.pop(order_id, None)

    async def follow_log(self, after: LogPosition) -> AsyncIterator[RecordedEvent]:
        """Every event of every order after `after`, in log order, then each new one, without end."""
        self._log_subscribers += 1
        try:
            while True:
                appended = self._log_appended  # taken before reading, so no wake-up falls in between
                batch = await self.store.read_all(after, LOG_BATCH)
                for recorded in batch:
                    yield recorded
                    after = recorded.log_position
                if len(batch) < LOG_BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(appended.wait(), self.poll_interval_s)
        finally:
            self._log_subscribers -= 1

    async def _listen(self) -> None:
        async for order_id in self.signal.listen():
            self._log_appended.set()
            self._log_appended = asyncio.Event()
            if order_id == ANY_ORDER:
                for watched in list(self._watched.values()):
                    watched.wake()
            elif watched := self._watched.get(order_id):
                watched.wake()
