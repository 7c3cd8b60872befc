"""LiveFeed's rule for slow subscribers, on the in-memory store: a subscriber is dropped when more than
`max_backlog` events arrive while it holds one it has not handed back; never for waiting, nor for what one
read brings at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from domain.events import RoutingStarted
from domain.order import Order
from eventstore.base import RecordedEvent
from eventstore.memory import InMemoryEventStore
from eventstore.signal import InProcessSignal
from projections.feed import FellBehind, LiveFeed

ORDER_ID = "3f0c8a52-2f1e-4c7e-9a4b-0d6c1b2e5f10"


async def started_feed(max_backlog: int) -> tuple[InMemoryEventStore, LiveFeed]:
    signal = InProcessSignal()
    store = InMemoryEventStore(signal)
    feed = LiveFeed(store, signal, max_backlog=max_backlog)
    await feed.start()
    await store.append(ORDER_ID, [Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")], 0)
    return store, feed


async def append_routing(store: InMemoryEventStore, after_version: int, count: int) -> None:
    events = [RoutingStarted(attempt=after_version + n) for n in range(1, count + 1)]
    await store.append(ORDER_ID, events, after_version)


async def versions(follower: AsyncIterator[RecordedEvent], count: int) -> list[int]:
    return [(await anext(follower)).version for _ in range(count)]


async def test_a_waiting_subscriber_is_not_dropped_when_one_read_brings_more_than_the_backlog() -> None:
    store, feed = await started_feed(max_backlog=2)
    dropped: list[FellBehind] = []
    follower = feed.follow(ORDER_ID, 0, dropped.append)
    assert await versions(follower, 1) == [1]
    waiting = asyncio.create_task(anext(follower))  # it asks for more: waiting is not falling behind
    await append_routing(store, 1, 5)

    assert [(await waiting).version, *await versions(follower, 4)] == [2, 3, 4, 5, 6]
    assert dropped == []
    await follower.aclose()
    await feed.stop()


async def test_a_subscriber_holding_an_event_while_more_than_the_backlog_arrives_is_dropped() -> None:
    store, feed = await started_feed(max_backlog=2)
    dropped: list[FellBehind] = []
    stalled = feed.follow(ORDER_ID, 0, dropped.append)
    taking = feed.follow(ORDER_ID, 0)
    assert await versions(stalled, 1) == [1]  # held (its socket never takes it), never handed back
    assert await versions(taking, 1) == [1]
    waiting = asyncio.create_task(anext(taking))
    await append_routing(store, 1, 3)  # three arrive since it took one: past the bound of two
    assert (await waiting).version == 2

    assert [(behind.sent, behind.max_backlog) for behind in dropped] == [(0, 2)]  # version 1 was not sent
    assert feed.subscriber_count == 1  # the others no longer wait on it, or even count it
    with pytest.raises(FellBehind):
        await anext(stalled)
    assert await versions(taking, 2) == [3, 4]
    await taking.aclose()
    assert feed.subscriber_count == 0
    await feed.stop()
