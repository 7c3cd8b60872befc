"""Catch-up from a read replica (DATABASE_READ_URL), on in-memory stores: the replica holds a prefix of the
primary's log, as a lagging streaming replica does. Subscribers get every event once, in order, the
replica's part first and the rest from the primary; a replica that fails is left for RETRY_AFTER_S."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.events import RoutingStarted
from domain.order import Order
from eventstore.base import LOG_START, LogPosition, RecordedEvent, StoreUnavailable
from eventstore.memory import InMemoryEventStore
from eventstore.replica import RETRY_AFTER_S, Replica
from eventstore.signal import InProcessSignal
from projections.feed import LOG_BATCH, LiveFeed, UnknownOrder

ORDER_ID = "3f0c8a52-2f1e-4c7e-9a4b-0d6c1b2e5f10"
OTHER_ID = "7d1e5a60-0b8c-4d2e-8f3a-9c4b2a1d0e7f"
SUBMITTED = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")


class UnreachableStore(InMemoryEventStore):
    """A replica that cannot be reached: every read raises as the SQL adapters do."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        self.reads += 1
        raise StoreUnavailable("the database cannot be reached (OperationalError)")

    async def read_all(self, after: LogPosition, limit: int) -> list[RecordedEvent]:
        self.reads += 1
        raise StoreUnavailable("the database cannot be reached (OperationalError)")


async def append(stores: list[InMemoryEventStore], order_id: str, routings: int, after_version: int) -> None:
    """The same events appended to each store (a replica replays the primary's commits in order)."""
    events = [RoutingStarted(attempt=after_version + n) for n in range(1, routings + 1)]
    for store in stores:
        await store.append(order_id, [SUBMITTED, *events] if after_version == 0 else events, after_version)


async def taken(follower: AsyncIterator[RecordedEvent], count: int) -> list[tuple[str, int]]:
    events = [await anext(follower) for _ in range(count)]
    return [(recorded.order_id, recorded.version) for recorded in events]


def feed_with(
    primary: InMemoryEventStore, replica_store: InMemoryEventStore, **replica_options: object
) -> tuple[LiveFeed, Replica]:
    replica = Replica(engine=None, store=replica_store, **replica_options)  # type: ignore[arg-type]
    return LiveFeed(primary, primary.signal, replica=replica), replica


async def test_an_order_is_caught_up_from_the_replica_and_completed_from_the_primary() -> None:
    primary, lagging = InMemoryEventStore(InProcessSignal()), InMemoryEventStore()
    await append([primary, lagging], ORDER_ID, routings=2, after_version=0)  # versions 1..3 on both
    await append([primary], ORDER_ID, routings=3, after_version=3)  # 4..6 not replayed yet
    feed, replica = feed_with(primary, lagging)
    await feed.start()

    follower = feed.follow(ORDER_ID)
    caught_up = await taken(follower, 6)
    await append([primary], ORDER_ID, routings=1, after_version=6)  # the live tail: the primary's
    live = await taken(follower, 1)
    await follower.aclose()
    await feed.stop()

    assert caught_up == [(ORDER_ID, v) for v in range(1, 7)]
    assert live == [(ORDER_ID, 7)]
    assert (replica.served, replica.fallbacks) == (1, 0)  # the first read only: the tail is the primary's


async def test_a_replica_without_the_order_yet_leaves_it_all_to_the_primary() -> None:
    primary, empty = InMemoryEventStore(InProcessSignal()), InMemoryEventStore()
    await append([primary], ORDER_ID, routings=2, after_version=0)
    feed, _ = feed_with(primary, empty)

    follower = feed.follow(ORDER_ID, after_version=1)
    assert await taken(follower, 2) == [(ORDER_ID, 2), (ORDER_ID, 3)]
    await follower.aclose()


async def test_an_order_neither_holds_is_unknown() -> None:
    feed, _ = feed_with(InMemoryEventStore(InProcessSignal()), InMemoryEventStore())
    with pytest.raises(UnknownOrder):
        await anext(feed.follow(ORDER_ID))
    assert feed.subscriber_count == 0


async def test_the_log_is_caught_up_from_the_replica_then_followed_on_the_primary_from_there() -> None:
    primary, lagging = InMemoryEventStore(InProcessSignal()), InMemoryEventStore()
    # More than a batch on the replica, so that its catch-up takes several reads.
    await append([primary, lagging], ORDER_ID, routings=LOG_BATCH, after_version=0)
    await append([primary], OTHER_ID, routings=2, after_version=0)
    await append([primary], ORDER_ID, routings=1, after_version=LOG_BATCH + 1)
    everything = await primary.read_all(LOG_START, 10 * LOG_BATCH)
    feed, replica = feed_with(primary, lagging)

    follower = feed.follow_log(LOG_START)
    got = [await anext(follower) for _ in range(len(everything))]
    await follower.aclose()

    assert [r.log_position for r in got] == [r.log_position for r in everything]
    assert (replica.served, replica.fallbacks) == (2, 0)  # a full batch, then the rest of the replica's


async def test_a_replica_that_fails_is_read_from_the_primary_and_left_alone_for_a_while() -> None:
    primary, unreachable = InMemoryEventStore(InProcessSignal()), UnreachableStore()
    await append([primary], ORDER_ID, routings=2, after_version=0)
    now = [0.0]
    feed, replica = feed_with(primary, unreachable, retry_after_s=5, clock=lambda: now[0])

    for _ in range(3):  # three subscribers in turn: each first read of the order reads the whole of it
        follower = feed.follow(ORDER_ID)
        assert await taken(follower, 3) == [(ORDER_ID, v) for v in (1, 2, 3)]
        await follower.aclose()
    log_follower = feed.follow_log(LOG_START)
    assert len([await anext(log_follower) for _ in range(3)]) == 3
    await log_follower.aclose()
    tried_while_away = unreachable.reads
    now[0] += 5
    follower = feed.follow(ORDER_ID)
    assert await taken(follower, 3) == [(ORDER_ID, v) for v in (1, 2, 3)]
    await follower.aclose()

    assert tried_while_away == 1  # then left alone until RETRY_AFTER_S had passed
    assert unreachable.reads == 2
    assert (replica.served, replica.fallbacks) == (0, 5)


class BehindStore(InMemoryEventStore):
    """A replica that answers with an error of its own: a migration the primary ran has not reached it yet
    (as the SQL adapters raise it, a driver's error that is not the store being unreachable)."""

    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        raise RuntimeError('column "token_out_decimals" does not exist')


class FrozenStore(InMemoryEventStore):
    """A replica that never answers (its server frozen, the network cut after connecting)."""

    def __init__(self) -> None:
        super().__init__()
        self.cancelled = asyncio.Event()
        self.pings = 0

    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return []

    async def ping(self) -> None:
        self.pings += 1
        await asyncio.Event().wait()


async def test_a_replica_that_answers_with_an_error_of_its_own_is_left_for_the_primary() -> None:
    primary = InMemoryEventStore(InProcessSignal())
    await append([primary], ORDER_ID, routings=1, after_version=0)
    feed, replica = feed_with(primary, BehindStore())

    follower = feed.follow(ORDER_ID)
    assert await taken(follower, 2) == [(ORDER_ID, 1), (ORDER_ID, 2)]
    await follower.aclose()

    assert (replica.served, replica.fallbacks, replica.away) == (0, 1, True)
    assert replica.failure == 'RuntimeError: column "token_out_decimals" does not exist'
    assert await replica.check() == replica.failure


async def test_a_replica_that_does_not_answer_is_left_for_the_primary_after_the_read_timeout() -> None:
    primary, frozen = InMemoryEventStore(InProcessSignal()), FrozenStore()
    await append([primary], ORDER_ID, routings=1, after_version=0)
    now = [0.0]
    feed, replica = feed_with(primary, frozen, read_timeout_s=0.05, clock=lambda: now[0])

    follower = feed.follow(ORDER_ID)
    async with asyncio.timeout(5):
        assert await taken(follower, 2) == [(ORDER_ID, 1), (ORDER_ID, 2)]
        await frozen.cancelled.wait()  # the read left behind is cancelled, not kept waiting
    await follower.aclose()
    assert replica.failure == "no answer within 0.05 s"
    assert await replica.check() == replica.failure and frozen.pings == 0  # away: /health does not wait
    now[0] += RETRY_AFTER_S
    async with asyncio.timeout(5):
        assert await replica.check() == "no answer within 0.05 s"  # asked again, and frozen still
    assert frozen.pings == 1


class MisconfiguredStore(InMemoryEventStore):
    """A replica URL naming a database the server does not have: unreachable, as the SQL adapters say it,
    with the driver's error under it."""

    async def read_stream(self, order_id: str, after_version: int = 0) -> list[RecordedEvent]:
        try:
            raise ConnectionError('FATAL:  database "order_engin" does not exist\n(more detail)')
        except ConnectionError as error:
            raise StoreUnavailable("the database cannot be reached (OperationalError)") from error


async def test_why_the_replica_was_left_names_the_driver_s_error_under_store_unavailable() -> None:
    primary = InMemoryEventStore(InProcessSignal())
    await append([primary], ORDER_ID, routings=1, after_version=0)
    feed, replica = feed_with(primary, MisconfiguredStore())

    follower = feed.follow(ORDER_ID)
    assert len(await taken(follower, 2)) == 2
    await follower.aclose()

    assert replica.failure == 'ConnectionError: FATAL:  database "order_engin" does not exist'
