"""The trigger stage without servers: the in-memory log and index, a fake chain of real pools, a fake clock.

A limit order fires on the round that finds its limit reached and not before, expires at its expiry, and of
racing watchers and cancels exactly one ends its wait."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import msgspec
import pytest

from commands.cancel_order import OrderNotFound, cancel_order
from commands.submit_order import SubmitOrder, submit_order
from commands.trigger_orders import TriggerOutcome
from domain.events import OrderCancelled, OrderExpired, TriggerArmed, TriggerFired
from domain.order import NotWaiting
from domain.order_type import OrderType
from eventstore.base import LOG_START
from eventstore.memory import InMemoryEventStore
from projections.trigger_index import InMemoryTriggerIndex
from tests.fakes import FakeChain, FakeClock, cpmm_pool
from venues.base import VenueError
from workers.triggers import TriggerWatcher

ENDS = (TriggerFired, OrderCancelled, OrderExpired)


class Stage:
    def __init__(self, usdc_per_sol: tuple[int, int] = (150, 151)) -> None:
        self.store = InMemoryEventStore()
        self.index = InMemoryTriggerIndex()
        self.clock = FakeClock()
        self.store.clock = self.clock.now
        self.chain = FakeChain()
        self.price(*usdc_per_sol)
        self.enqueued: list[str] = []

    def price(self, raydium: int, meteora: int) -> None:
        self.chain.pools_by_venue = {
            "raydium": [cpmm_pool("raydium", raydium)],
            "meteora": [cpmm_pool("meteora", meteora)],
        }

    async def enqueue(self, order_id: str) -> None:
        self.enqueued.append(order_id)

    def watcher(self) -> TriggerWatcher:
        return TriggerWatcher(self.index, self.chain, self.store, self.enqueue, self.clock, interval_s=0.1)

    async def submit(self, limit_price: str = "152", **changes: object) -> str:
        command = SubmitOrder(
            order_type=OrderType.LIMIT,
            token_in="SOL",
            token_out="USDC",
            amount_in=Decimal("0.5"),
            slippage_bps=50,
            limit_price=limit_price,
        )
        command = msgspec.structs.replace(command, **changes)
        submitted = await submit_order(command, self.store, self.clock)
        return submitted.order_id

    async def project(self, batch_size: int = 1000) -> None:
        while batch := await self.store.read_all(await self.index.position(), batch_size):
            assert await self.index.apply(await self.index.position(), batch)

    async def round(self) -> Counter[TriggerOutcome]:
        await self.project()
        return await self.watcher().run_round()

    async def ends(self, order_id: str) -> list[type]:
        return [type(r.event) for r in await self.store.read_stream(order_id) if isinstance(r.event, ENDS)]


async def test_an_armed_order_waits_and_is_not_queued():
    stage = Stage()
    order_id = await stage.submit()
    events = [type(r.event) for r in await stage.store.read_stream(order_id)]
    assert events[1] is TriggerArmed
    assert stage.enqueued == []


async def test_an_order_fires_on_the_round_that_finds_its_limit_reached_and_not_before():
    stage = Stage(usdc_per_sol=(150, 151))
    order_id = await stage.submit(limit_price="152")

    assert await stage.round() == Counter()  # no pool's spot price reaches 152: not even a candidate
    stage.price(150, 160)
    assert await stage.round() == Counter({TriggerOutcome.FIRED: 1})

    fired = (await stage.store.read_stream(order_id))[-1].event
    assert isinstance(fired, TriggerFired)
    assert fired.amount_out_raw >= 76_000_000  # 152 x 0.5 SOL
    assert fired.route_plan[0].pool == "meteora-cpmm-SOL-USDC-1"
    assert stage.enqueued == [order_id]
    assert await stage.round() == Counter()  # fired: out of the index, never fired twice


async def test_a_spot_price_at_the_limit_is_not_enough_when_fees_and_impact_take_it_below():
    stage = Stage(usdc_per_sol=(150, 151))
    order_id = await stage.submit(limit_price="150.9")  # below 151's spot, above what 0.25 % fee leaves

    assert await stage.round() == Counter({TriggerOutcome.NOT_REACHED: 1})
    assert await stage.ends(order_id) == []
    assert stage.enqueued == []


async def test_an_order_expires_at_its_expiry_by_the_clock_not_before():
    stage = Stage()
    order_id = await stage.submit(expires_at=stage.clock.now() + timedelta(seconds=60))

    stage.clock.moment += timedelta(seconds=59)
    assert await stage.round() == Counter()
    stage.clock.moment += timedelta(seconds=1)
    assert await stage.round() == Counter({TriggerOutcome.EXPIRED: 1})
    assert await stage.ends(order_id) == [OrderExpired]
    assert stage.enqueued == []
    assert await stage.round() == Counter()


async def test_an_order_both_due_and_crossed_expires():
    stage = Stage()
    order_id = await stage.submit(limit_price="140", expires_at=stage.clock.now() + timedelta(seconds=1))
    await stage.project()
    stage.clock.moment += timedelta(seconds=1)
    assert await stage.watcher().run_round() == Counter({TriggerOutcome.EXPIRED: 1})
    assert await stage.ends(order_id) == [OrderExpired]


async def test_the_index_finds_an_order_armed_in_a_later_batch_than_its_submission():
    stage = Stage(usdc_per_sol=(150, 160))
    await stage.submit(limit_price="152")
    await stage.project(batch_size=1)  # OrderSubmitted and TriggerArmed in two batches
    assert await stage.index.count() == 1
    assert await stage.watcher().run_round() == Counter({TriggerOutcome.FIRED: 1})


async def test_racing_watchers_fire_each_order_exactly_once():
    stage = Stage(usdc_per_sol=(150, 151))
    order_ids = [await stage.submit(limit_price=str(152 + i % 5)) for i in range(40)]
    await stage.project()
    stage.price(150, 170)

    rounds = await asyncio.gather(*(stage.watcher().run_round() for _ in range(4)))

    assert sum(r[TriggerOutcome.FIRED] for r in rounds) == 40
    for order_id in order_ids:
        assert await stage.ends(order_id) == [TriggerFired]
    assert sorted(stage.enqueued) == sorted(order_ids)


async def test_of_a_cancel_and_a_fire_racing_exactly_one_ends_the_wait():
    stage = Stage(usdc_per_sol=(150, 151))
    order_ids = [await stage.submit(limit_price="152") for _ in range(40)]
    await stage.project()
    stage.price(150, 170)

    async def cancel(order_id: str) -> str:
        try:
            await cancel_order(order_id, stage.store)
        except NotWaiting as refused:
            return str(refused.status)
        return "cancelled"

    results = await asyncio.gather(stage.watcher().run_round(), *(cancel(i) for i in order_ids))

    fired = results[0][TriggerOutcome.FIRED]
    cancels = Counter(results[1:])
    assert fired + cancels["cancelled"] == 40
    assert cancels["pending"] == fired  # each cancel that lost found the order fired, now pending
    for order_id in order_ids:
        assert len(await stage.ends(order_id)) == 1


async def test_a_cancel_of_an_unknown_order_says_so():
    with pytest.raises(OrderNotFound):
        await cancel_order("00000000-0000-0000-0000-000000000000", InMemoryEventStore())


async def test_the_index_forgets_orders_whose_wait_ended():
    stage = Stage()
    first, second = await stage.submit(), await stage.submit(expires_at=stage.clock.now() + timedelta(1))
    await stage.project()
    assert await stage.index.count() == 2
    assert await stage.index.armed_pairs() == {("SOL", "USDC")}
    await cancel_order(first, stage.store)
    await cancel_order(second, stage.store)
    await stage.project()
    assert await stage.index.count() == 0
    assert await stage.index.armed_pairs() == set()
    assert await stage.index.due(stage.clock.now() + timedelta(days=2)) == []
    assert await stage.store.count_after(LOG_START) == 6


async def test_a_venue_that_stops_answering_is_told_once_and_once_again_when_it_is_back(caplog):
    stage = Stage()
    await stage.submit()
    await stage.project()
    watcher = stage.watcher()
    stage.chain.pools_outcomes["meteora"] = [_unreachable] * 5

    with caplog.at_level("INFO", logger="workers.triggers"):
        for _ in range(7):  # five rounds without meteora, then two with it
            await watcher.run_round()

    told = [record.getMessage() for record in caplog.records if "meteora" in record.getMessage()]
    assert len(told) == 2, told
    assert told[0].startswith("trigger rounds go on without meteora") and "again" in told[1]
    assert watcher.venues_away == set()


def _unreachable() -> None:
    raise VenueError("the chain cannot be reached")
