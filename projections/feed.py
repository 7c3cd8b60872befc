"""The live feeds: one order's events for any number of subscribers per order, and the whole log.

A subscriber first registers for wake-ups, then reads the order's events from the log after the version it
already has, and reads again on every wake-up. Because it always reads the log by version, it can neither
skip an event (one appended during the replay is read on the next wake-up) nor repeat one. Subscribers of
the same order share one reader, so a wake-up costs one query per order, not one per subscriber; so does
the timer that covers for lost wake-ups: one per order, it wakes the order's subscribers when the log has
not been read for a while (longer when many orders are watched: at most POLLS_PER_S reads a second).

The whole-log feed follows the log the way a projector does, from a log position, in log order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable

from domain.transitions import status_after
from eventstore.base import EventStore, LogPosition, RecordedEvent
from eventstore.signal import ANY_ORDER, AppendSignal

log = logging.getLogger(__name__)

LOG_BATCH = 500
# Quiet orders re-read per second, however many are watched: the timer is only for a lost wake-up, which is
# rare, while a query a second for each of a thousand watched orders would keep a core busy.
POLLS_PER_S = 50


class _WatchedOrder:
    def __init__(self, order_id: str, store: EventStore, poll_interval_s: Callable[[], float]) -> None:
        self.order_id = order_id
        self.store = store
        self.events: list[RecordedEvent] = []  # versions 1..n, as far as read
        self.subscribers = 0
        self.wake_ups = 0  # so far
        self.appended = asyncio.Event()  # set (and replaced) at each wake-up
        self._read_at = -math.inf  # when the latest read of the log began (monotonic)
        self._read_after = -1  # wake-ups there had been when the latest read began
        self._read: asyncio.Future[None] | None = None  # the latest read of the log, maybe still going
        # One timer per order, not a timeout per subscriber: with a thousand subscribers on one order,
        # rescheduling a timeout for each at every event took 13% of the API's CPU.
        self._poll_interval_s = poll_interval_s
        self._poll = asyncio.get_running_loop().call_later(poll_interval_s(), self._poll_if_quiet)

    @property
    def ended(self) -> bool:
        return bool(self.events) and status_after(self.events[-1].event).is_terminal

    def wake(self) -> None:
        self.wake_ups += 1
        self.appended.set()
        self.appended = asyncio.Event()

    async def read_past(self, version: int, woken: int | None) -> None:
        """Make sure `events` holds every event past `version` that the log had at wake-up number `woken`
        (None: now), if none is there yet. Subscribers woken together share one read, and all go on together
        once it is done (not one by one, as from behind a lock)."""
        while len(self.events) <= version:
            read = self._read
            fresh = read is not None and woken is not None and self._read_after >= woken
            if read is None or (read.done() and not fresh):
                self._read_after, self._read_at = self.wake_ups, time.monotonic()
                read = self._read = asyncio.ensure_future(self._read_more())
                woken = self._read_after
            elif read.done():
                return read.result()  # it began after this subscriber's wake-up, and found nothing new
            await asyncio.shield(read)  # a subscriber leaving mid-read must not cancel it for the others

    async def _read_more(self) -> None:
        self.events += await self.store.read_stream(self.order_id, after_version=len(self.events))

    def _poll_if_quiet(self) -> None:
        """A wake-up may have been lost: if the log has not been read for a poll interval, wake every
        subscriber (the first one reads)."""
        interval_s = self._poll_interval_s()
        quiet_s = time.monotonic() - self._read_at
        if quiet_s >= interval_s:
            self.wake()
            quiet_s = 0.0
        self._poll = asyncio.get_running_loop().call_later(interval_s - quiet_s, self._poll_if_quiet)

    def close(self) -> None:
        self._poll.cancel()
        if self._read is not None:
            self._read.cancel()


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
            watched = self._watched[order_id] = _WatchedOrder(order_id, self.store, self._poll_interval_s)
        watched.subscribers += 1
        try:
            sent, woken = after_version, None  # None: a newcomer reads the log as it is now
            while True:
                appended = watched.appended  # taken before reading, so no wake-up falls in between
                await watched.read_past(sent, woken)
                for recorded in watched.events[sent:]:
                    yield recorded
                    sent = recorded.version
                if watched.ended:
                    return
                await appended.wait()  # or the order's timer, which covers for a lost wake-up
                woken = watched.wake_ups
        finally:
            watched.subscribers -= 1
            if watched.subscribers == 0:
                self._watched.pop(order_id, None)
                watched.close()

    def _poll_interval_s(self) -> float:
        """How long an order may go unread before its timer wakes its subscribers: longer when many orders
        are watched, so that the timers cost at most POLLS_PER_S queries a second."""
        return max(self.poll_interval_s, len(self._watched) / POLLS_PER_S)

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
                    with contextlib.suppress(TimeoutError):  # (not wait_for: see Projector.run)
                        async with asyncio.timeout(self.poll_interval_s):
                            await appended.wait()
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
