"""The composition root takes the event store, chain and clock a test injects, and wires them in."""

from __future__ import annotations

import asyncio

from commands.clock import SystemClock
from domain.events import OrderConfirmed
from domain.order import Order
from engine.exiting import where_it_waits
from engine.services import Services
from engine.settings import load_settings
from eventstore.memory import InMemoryEventStore
from market.in_process import InProcessChain
from tests.fakes import FakeChain, FakeClock, drops
from venues.market_http import MarketHttpChain


async def test_services_execute_with_the_injected_store_chain_and_clock(tmp_path):
    clock = FakeClock()
    store = InMemoryEventStore(clock=clock.now)
    chain = FakeChain(send_outcomes=[drops()])
    settings = load_settings({}, database_url=f"sqlite:///{tmp_path / 'unused.db'}", max_crashed_runs=5)
    services = Services(settings, store=store, chain=chain, clock=clock)
    execution = services.make_executor().execution
    order = Order.submit("market", "SOL", "USDC", 50, amount_in="0.5")
    await store.append("o-1", [order], expected_version=0)
    await execution.run("o-1")

    assert services.store is store
    assert (execution.store, execution.chain, execution.clock) == (store, chain, clock)
    assert execution.policy.max_crashed_runs == 5
    assert isinstance((await store.read_stream("o-1"))[-1].event, OrderConfirmed)
    assert len(clock.sleeps) == 1  # the retry's backoff, waited on the injected clock
    await services.db.dispose()


def test_services_default_to_the_real_clock_and_the_market(tmp_path):
    services = Services(load_settings({}, database_url=f"sqlite:///{tmp_path / 'e.db'}"))
    execution = services.make_executor().execution
    assert isinstance(execution.clock, SystemClock)
    assert execution.chain.venues == ("raydium", "meteora")


async def test_the_chain_is_the_market_in_process_unless_market_url_names_one(tmp_path):
    embedded = Services(
        load_settings({}, database_url=f"sqlite:///{tmp_path / 'e.db'}", mock_quote_delay_ms=7)
    )
    assert isinstance(embedded.chain, InProcessChain)
    assert (embedded.chain.market, embedded.market.config.quote_delay_ms) == (embedded.market, 7)
    apart = Services(
        load_settings({}, database_url=f"sqlite:///{tmp_path / 'a.db'}", market_url="http://127.0.0.1:3001")
    )
    assert isinstance(apart.chain, MarketHttpChain)
    assert "market" not in apart.__dict__  # no market of its own is built
    await embedded.stop()
    await apart.stop()


async def test_a_task_that_outlives_its_cancellation_is_named_down_to_the_await_it_waits_in():
    async def reading() -> None:
        await asyncio.Event().wait()

    async def loop() -> None:
        await reading()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    where = where_it_waits(task).split(" > ")
    task.cancel()

    assert [place.split(" ")[0] for place in where] == ["loop", "reading", "wait"]
