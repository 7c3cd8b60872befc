"""The live feeds: one order's events for any number of subscribers per order, and the whole log.

Each watched order has one reader: a wake-up (or the order's timer, which covers for a lost wake-up) makes it
read the order's events from the log after the last version it holds; subscribers are woken only once the
read has brought something, and each takes from the shared list whatever it has not sent yet. Because the
reader always reads the log by version, no subscriber can skip an event (one appended during a read is read
at the next wake-up) or get one twice. A wake-up costs one query per order, not one per subscriber, and a
subscriber costs, per event, one wake-up and its own send. The timer is one per order too: it wakes the
reader when the log has not been read for a while (longer when many orders are watched: at most
POLLS_PER_S reads a second).

A subscriber that has more than `max_backlog` events waiting that arrived since it last took one (its
socket is not taking what it is given) is dropped by the read that takes it past the bound: it leaves the
order's subscribers, so it costs the others nothing more, and its consumer is told (see `LiveFeed.follow`).

The whole-log feed follows the log the way a projector does, from a log position, in log order.

With a read replica (DATABASE_READ_URL), what was appended before a subscriber came is read from it as far as
it has it, and the rest from the primary, which alone feeds the live tail: an order's first read takes its
events from the replica (a prefix of the primary's stream: it replays commits in order) and those after its
last version from the primary; a follower of the whole log reads the replica until it has nothing more,
then goes on from the same log position on the primary. No event is skipped or sent twice at the handover,
and none is older than one already sent, however far behind the replica is (or if it cannot be reached: then
the primary is read from the start).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import AsyncIterator, Callable
from functools import partial

from domain.transitions import status_after
from eventstore.base import EventStore, LogPosition, RecordedEvent, StoreUnavailable
from eventstore.replica import Replica
from eventstore.signal import ANY_ORDER, AppendSignal

log = logging.getLogger(__name__)

LOG_BATCH = 500
# Quiet orders re-read per second, however many are watched: the timer is only for a lost wake-up, which is
# rare, while a query a second for each of a thousand watched orders would keep a core busy.
POLLS_PER_S = 50
# Events an order's subscriber may have waiting beyond what its socket has taken. An order has tens of
# events, so only a client that has stopped reading gets this far behind.
MAX_BACKLOG = 256


class FellBehind(Exception):
    """A subscriber was dropped for falling more than `max_backlog` events behind; `sent` is the last version
    it handed back by asking for the next, so the last one its consumer sent (resume after it)."""

    def __init__(self, sent: int, max_backlog: int) -> None:
        super().__init__(f"fell more than {max_backlog} events behind after version {sent}")
        self.sent = sent
        self.max_backlog = max_backlog


class UnknownOrder(Exception):
    """The log holds no event of the order a subscriber asked for."""


class _Subscriber:
    __slots__ = ("dropped", "fell_behind", "seen", "sent")

    def __init__(self, sent: int, fell_behind: Callable[[FellBehind], object]) -> None:
        self.sent = sent  # the last version taken from the iterator and handed back (sent)
        # How many events the order had when it last took one: what arrived since is its backlog. Not taking
        # (before its first read, or waiting for more) is no backlog.
        self.seen = sys.maxsize
        self.fell_behind = fell_behind
        self.dropped = False


class _WatchedOrder:
    def __init__(
        self,
        order_id: str,
        store: EventStore,
        replica: Replica | None,
        poll_interval_s: Callable[[], float],
        max_backlog: int,
    ) -> None:
        self.order_id = order_id
        self.store = store
        self.replica = replica
        self.max_backlog = max_backlog
        self.events: list[RecordedEvent] = []  # versions 1..n, as far as read
        self.subscribers: set[_Subscriber] = set()
        self.failure: Exception | None = None  # the latest read's (StoreUnavailable), if it failed
        self.read_done = asyncio.Event()  # set (and replaced) at the end of each read
        self._reads_begun = self._reads_ended = 0
        self._stale = False  # a read has been asked for since the current one began
        self._reader: asyncio.Task[None] | None = None
        self._read_at = -math.inf  # when the latest read began (monotonic)
        # One timer per order, not a timeout per subscriber: with a thousand subscribers on one order,
        # rescheduling a timeout for each at every event took 13% of the API's CPU.
        self._poll_interval_s = poll_interval_s
        self._poll = asyncio.get_running_loop().call_later(poll_interval_s(), self._poll_if_quiet)

    @property
    def ended(self) -> bool:
        return bool(self.events) and status_after(self.events[-1].event).is_terminal

    def wake(self) -> None:
        """Read the log again: now if no read is going, else right after the current one (which may have
        begun before the append that woke us)."""
        self._stale = True
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_while_stale())

    async def read_now(self) -> None:
        """Until a read that began after this call has ended: the log as it is now, for a newcomer. Raises
        what that read raised (StoreUnavailable). Newcomers together share one read."""
        wanted = self._reads_begun + 1  # the next read to begin is the first to begin after this call
        self.wake()
        while self._reads_ended < wanted:
            await self.read_done.wait()
        if self.failure is not None:
            raise self.failure

    async def _read_while_stale(self) -> None:
        try:
            while self._stale:
                self._stale = False
                self._reads_begun += 1
                self._read_at = time.monotonic()
                try:
                    read = await self._read()
                    self.failure = None
                except Exception as error:  # the subscribers raise it; the next wake-up reads again
                    if not isinstance(error, StoreUnavailable):
                        log.exception("reading order %s for its subscribers failed", self.order_id)
                    read, self.failure = [], error
                self.events += read
                self._reads_ended += 1
                if read:
                    self._drop_the_stalled()
                done, self.read_done = self.read_done, asyncio.Event()
                done.set()
        finally:
            self._reader = None

    async def _read(self) -> list[RecordedEvent]:
        """The events after those held: from the primary, but the first time from the replica as far as it
        has them, then the rest from the primary (nothing from the replica when it fails)."""
        held = len(self.events)
        history: list[RecordedEvent] = []
        if held == 0 and (replica := self.replica) is not None:
            history = await replica.read(partial(replica.store.read_stream, self.order_id), _nothing)
        return history + await self.store.read_stream(self.order_id, after_version=held + len(history))

    def _drop_the_stalled(self) -> None:
        newest = len(self.events)
        for subscriber in [s for s in self.subscribers if newest - s.seen > self.max_backlog]:
            self.subscribers.discard(subscriber)
            subscriber.dropped = True
            subscriber.fell_behind(FellBehind(subscriber.sent, self.max_backlog))

    def _poll_if_quiet(self) -> None:
        """A wake-up may have been lost: if the log has not been read for a poll interval, read it."""
        interval_s = self._poll_interval_s()
        quiet_s = time.monotonic() - self._read_at
        if quiet_s >= interval_s:
            self.wake()
            quiet_s = 0.0
        self._poll = asyncio.get_running_loop().call_later(interval_s - quiet_s, self._poll_if_quiet)

    def close(self) -> None:
        self._poll.cancel()
        if self._reader is not None:
            self._reader.cancel()


class LiveFeed:
    def __init__(
        self,
        store: EventStore,
        signal: AppendSignal,
        poll_interval_s: float = 1.0,
        max_backlog: int = MAX_BACKLOG,
        replica: Replica | None = None,
    ) -> None:
        """`replica`: where subscribers' catch-up is read first (see the module's docstring)."""
        self.store = store
        self.replica = replica
        self.signal = signal
        self.poll_interval_s = poll_interval_s
        self.max_backlog = max_backlog
        self._watched: dict[str, _WatchedOrder] = {}
        self._log_appended = asyncio.Event()
        self._log_subscribers = 0
        self._listener: asyncio.Task[None] | None = None

    @property
    def subscriber_count(self) -> int:
        """Clients following one order or the whole log, in this process."""
        return sum(len(watched.subscribers) for watched in self._watched.values()) + self._log_subscribers

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener

    async def follow(
        self,
        order_id: str,
        after_version: int = 0,
        fell_behind: Callable[[FellBehind], object] = lambda _: None,
    ) -> AsyncIterator[RecordedEvent]:
        """Every event of the order after `after_version`, then each new one, ending after the last. Raises
        UnknownOrder when the log has no event of the order, StoreUnavailable when a read of the log fails,
        and FellBehind once dropped: more than `max_backlog` events arrived since it last asked for one.
        `fell_behind` is called the moment it is dropped, so that the consumer stops waiting on its socket;
        the iterator raises FellBehind when next asked."""
        watched = self._watched.get(order_id)
        if watched is None:
            watched = self._watched[order_id] = _WatchedOrder(
                order_id, self.store, self.replica, self._poll_interval_s, self.max_backlog
            )
        subscriber = _Subscriber(after_version, fell_behind)
        watched.subscribers.add(subscriber)
        try:
            await watched.read_now()
            if not watched.events:
                raise UnknownOrder(order_id)
            while True:
                read_done = watched.read_done  # taken before sending, so no read ends unseen in between
                while not subscriber.dropped and subscriber.sent < len(watched.events):
                    subscriber.seen = len(watched.events)
                    recorded = watched.events[subscriber.sent]  # versions are 1..n: the next one
                    yield recorded
                    subscriber.sent = recorded.version
                if subscriber.dropped:
                    raise FellBehind(subscriber.sent, self.max_backlog)  # (if the consumer asks again)
                if watched.ended:
                    return
                subscriber.seen = sys.maxsize
                await read_done.wait()  # the reader's, after a wake-up or the order's timer
                if watched.failure is not None:
                    raise watched.failure
        finally:
            watched.subscribers.discard(subscriber)
            if not watched.subscribers and self._watched.get(order_id) is watched:
                del self._watched[order_id]
                watched.close()

    def _poll_interval_s(self) -> float:
        """How long an order may go unread before its timer wakes its subscribers: longer when many orders
        are watched, so that the timers cost at most POLLS_PER_S queries a second."""
        return max(self.poll_interval_s, len(self._watched) / POLLS_PER_S)

    async def follow_log(self, after: LogPosition) -> AsyncIterator[RecordedEvent]:
        """Every event of every order after `after`, in log order, then each new one, without end."""
        self._log_subscribers += 1
        try:
            if self.replica is not None:  # the history, as far as the replica has it
                replica = self.replica
                while True:
                    batch = await replica.read(partial(replica.store.read_all, after, LOG_BATCH), _nothing)
                    for recorded in batch:
                        yield recorded
                        after = recorded.log_position
                    if len(batch) < LOG_BATCH:
                        break
            while True:  # the rest, and the live tail, from the primary
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


async def _nothing() -> list[RecordedEvent]:
    """What the replica gives when it cannot be reached: nothing, the primary is read from the start."""
    return []
