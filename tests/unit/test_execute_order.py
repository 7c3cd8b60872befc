"""`Execution.run` without servers: the in-memory event store, fake venues and a fake clock.

Every path of the error policy (venue failures retried, our own errors recorded as crashed runs and bounded,
the infrastructure's raised), resuming from every status, and two runners racing on one order."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from msgspec.structs import replace

from commands.execute_order import Execution
from domain.events import (
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    OrderConfirmed,
    OrderFailed,
    RoutingStarted,
)
from domain.order import Order
from domain.order_type import OrderType
from domain.retry import RetryPolicy
from domain.status import OrderStatus
from eventstore.memory import InMemoryEventStore
from tests.fakes import FakeClock, FakeVenue, NoLimit, raises, venue_error
from venues.base import SwapTransaction

ORDER_ID = "6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11"
POLICY = RetryPolicy(max_attempts=3, base_ms=500, max_crashed_runs=3)
TERMINAL = (OrderConfirmed, OrderFailed)


class Setup:
    def __init__(self, *venues: FakeVenue, policy: RetryPolicy = POLICY) -> None:
        self.clock = FakeClock()
        self.store = InMemoryEventStore(clock=self.clock.now)
        self.venues = list(venues) or [FakeVenue("raydium", 150.0), FakeVenue("meteora", 150.5)]
        self.limiter = NoLimit()
        self.execution = Execution(
            store=self.store,
            venues=list(self.venues),
            policy=policy,
            limiter=self.limiter,
            clock=self.clock,
            jitter=random.Random(1),
        )

    async def submit(self, order_type: str = "market") -> None:
        event = Order.submit("market", "SOL", "USDC", 0.5, 50)
        if order_type != "market":  # accepted by a newer engine, say
            event = replace(event, order_type=OrderType(order_type))
        await self.store.append(ORDER_ID, [event], expected_version=0)

    async def events(self) -> list[Event]:
        return [r.event for r in await self.store.read_stream(ORDER_ID)]

    async def run(self) -> list[Event]:
        await self.execution.run(ORDER_ID)
        return await self.events()


def types(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


HAPPY = ["OrderSubmitted", "RoutingStarted", "VenueSelected", "TransactionBuilt", "TransactionSubmitted"]


async def test_a_new_order_is_routed_to_the_better_venue_and_confirmed():
    setup = Setup()
    await setup.submit()
    events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    assert events[2].selected_venue == "meteora"
    assert events[-1] == OrderConfirmed(
        venue="meteora",
        tx_hash=f"meteora-{ORDER_ID}:1",
        execution_price=events[2].quotes[1].effective_price,
        amount_out=0.5 * events[2].quotes[1].effective_price,
    )
    assert setup.limiter.turns == 1
    assert setup.clock.sleeps == []


# -- resuming from every status ------------------------------------------------------------------------


async def _log_up_to(setup: Setup, status: str) -> None:
    """Append the happy path's events one by one until the order reaches `status`."""
    await setup.submit()
    order = Order.from_events(ORDER_ID, await setup.events())
    quotes = [await v.quote("SOL", "USDC", 0.5) for v in setup.venues]
    steps = {
        "routing": [order.start_attempt],
        "routing-selected": [order.start_attempt, lambda: order.select_venue(quotes)],
        "building": [order.start_attempt, lambda: order.select_venue(quotes), order.build_transaction],
    }
    steps["submitted"] = [*steps["building"], order.submit_transaction]
    for decide in steps.get(status, []):
        event = decide()
        order.apply(event)
        await setup.store.append(ORDER_ID, [event], expected_version=order.version - 1)


@pytest.mark.parametrize("status", ["pending", "routing", "routing-selected", "building", "submitted"])
async def test_a_run_resumes_from_where_the_log_stopped_and_takes_each_step_once(status):
    setup = Setup()
    await _log_up_to(setup, status)
    before = len(await setup.events())
    events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    assert len(events) > before
    assert setup.limiter.turns == (1 if status == "pending" else 0)
    assert [tx for v in setup.venues for tx in v.executed] == [f"{ORDER_ID}:1"]


async def test_resuming_a_submitted_order_resends_the_same_transaction_which_the_venue_deduplicates():
    setup = Setup()
    await _log_up_to(setup, "submitted")
    meteora = setup.venues[1]
    await meteora.execute(_transaction_of(await setup.events()))  # the swap landed before a crash
    events = await setup.run()

    assert meteora.executed == [f"{ORDER_ID}:1", f"{ORDER_ID}:1"]
    assert events[-1].tx_hash == f"meteora-{ORDER_ID}:1"


def _transaction_of(events: list[Event]) -> SwapTransaction:
    order = Order.from_events(ORDER_ID, events)
    return SwapTransaction(
        client_tx_id=order.client_tx_id,
        token_in="SOL",
        token_out="USDC",
        amount_in=0.5,
        quoted_price=order.selected_quote.effective_price,
        min_amount_out=order.min_amount_out,
        instructions=order.instructions,
    )


@pytest.mark.parametrize("last", ["confirmed", "failed"])
async def test_a_run_on_an_ended_order_does_nothing(last):
    setup = Setup()
    await setup.submit()
    if last == "confirmed":
        await setup.run()
    else:
        await setup.store.append(ORDER_ID, [OrderFailed(reason="x", attempts=0)], expected_version=1)
    before = await setup.events()
    assert await setup.run() == before


async def test_a_run_on_an_unknown_order_does_nothing():
    setup = Setup()
    assert await setup.run() == []


# -- the venue's failures: retried as failed attempts ------------------------------------------------------


async def test_no_quotes_fails_the_attempt_with_each_venues_reason_and_retries_after_the_backoff():
    raydium = FakeVenue("raydium", quote_outcomes=[venue_error("pool closed")])
    meteora = FakeVenue("meteora", quote_outcomes=[raises(TimeoutError())])
    setup = Setup(raydium, meteora)
    await setup.submit()
    events = await setup.run()

    failure = events[2]
    assert failure == ExecutionAttemptFailed(
        attempt=1,
        reason="no venue quoted: raydium: pool closed; meteora: venue did not answer in time",
        retry_in_ms=failure.retry_in_ms,
    )
    assert types(events)[3:] == [
        "RoutingStarted",
        "VenueSelected",
        "TransactionBuilt",
        "TransactionSubmitted",
        "OrderConfirmed",
    ]
    assert setup.clock.sleeps == pytest.approx([failure.retry_in_ms / 1000])


@pytest.mark.parametrize("failure", [venue_error("venue error: pool busy"), raises(TimeoutError())])
async def test_a_venue_that_fails_to_quote_is_left_out_and_the_other_wins(failure, caplog):
    raydium = FakeVenue("raydium", price=151.0, quote_outcomes=[failure])
    setup = Setup(raydium, FakeVenue("meteora", 150.0))
    await setup.submit()
    with caplog.at_level(logging.WARNING):
        events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    assert [q.venue for q in events[2].quotes] == ["meteora"]
    assert any(getattr(r, "venue", None) == "raydium" for r in caplog.records)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (venue_error("venue error: pool busy"), "venue error: pool busy"),
        (raises(TimeoutError()), "venue did not answer in time"),
    ],
)
async def test_execution_failures_are_retried_with_growing_backoff_then_the_order_fails(failure, reason):
    meteora = FakeVenue("meteora", 151.0, execute_outcomes=[failure] * 3)
    setup = Setup(FakeVenue("raydium", 150.0), meteora)
    await setup.submit()
    events = await setup.run()

    failures = [e for e in events if isinstance(e, ExecutionAttemptFailed)]
    assert [(f.attempt, f.reason) for f in failures] == [(1, reason), (2, reason)]
    assert failures[1].retry_in_ms > failures[0].retry_in_ms
    assert setup.clock.sleeps == pytest.approx([f.retry_in_ms / 1000 for f in failures])  # by the clock
    assert events[-1] == OrderFailed(reason=reason, attempts=3)
    assert meteora.executed == [f"{ORDER_ID}:1", f"{ORDER_ID}:2", f"{ORDER_ID}:3"]


async def test_a_retry_resumed_after_a_restart_waits_only_what_remains_of_the_backoff():
    setup = Setup(FakeVenue("meteora", execute_outcomes=[venue_error()]))
    await _log_up_to(setup, "submitted")
    await setup.execution.run(ORDER_ID)
    # Stop before the retry: a fresh log up to the failure, then a run started 0.1 s after it.
    events = await setup.events()
    failure = next(e for e in events if isinstance(e, ExecutionAttemptFailed))
    assert setup.clock.sleeps == pytest.approx([failure.retry_in_ms / 1000])

    later = Setup(FakeVenue("meteora"))
    for version, event in enumerate(events[: events.index(failure) + 1], start=1):
        await later.store.append(ORDER_ID, [event], expected_version=version - 1)
    later.clock.moment = later.clock.moment.replace(microsecond=100_000)
    await later.execution.run(ORDER_ID)
    assert later.clock.sleeps == [pytest.approx(failure.retry_in_ms / 1000 - 0.1)]
    assert isinstance((await later.events())[-1], OrderConfirmed)


# -- our own errors: crashed runs, bounded ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["quote", "execute"])
async def test_a_venue_raising_a_programming_error_crashes_the_run_and_the_order_fails_after_three(
    where, caplog
):
    crash = [raises(KeyError("price"))] * 3
    meteora = FakeVenue("meteora", **{f"{where}_outcomes": crash})
    setup = Setup(meteora)
    await setup.submit()
    with caplog.at_level(logging.ERROR):
        events = await setup.run()

    crashes = [e for e in events if isinstance(e, ExecutionCrashed)]
    assert [c.reason for c in crashes] == ["internal error: KeyError: 'price'"] * 2
    assert crashes[1].retry_in_ms > crashes[0].retry_in_ms
    assert setup.clock.sleeps == pytest.approx([c.retry_in_ms / 1000 for c in crashes])
    assert events[-1] == OrderFailed(reason="internal error: KeyError: 'price' (crashed 3 runs)", attempts=3)
    assert sum(isinstance(e, TERMINAL) for e in events) == 1
    logged = [r for r in caplog.records if r.getMessage() == "order run crashed"]
    assert len(logged) == 3
    assert all(r.exc_info and isinstance(r.exc_info[1].__cause__, KeyError) for r in logged)


async def test_a_run_that_crashed_once_goes_on_and_confirms():
    meteora = FakeVenue("meteora", execute_outcomes=[raises(ZeroDivisionError("division by zero"))])
    setup = Setup(meteora)
    await setup.submit()
    events = await setup.run()

    assert [type(e) for e in events if isinstance(e, ExecutionCrashed | OrderConfirmed)] == [
        ExecutionCrashed,
        OrderConfirmed,
    ]
    assert Order.from_events(ORDER_ID, events).crashed_runs == 1


async def test_a_selected_venue_that_is_not_configured_is_our_error():
    setup = Setup(FakeVenue("raydium"), FakeVenue("meteora", 151.0))
    await _log_up_to(setup, "submitted")  # selected meteora
    setup.execution.venues = [setup.venues[0]]  # then restarted without it
    events = await setup.run()

    crashed = [e for e in events if isinstance(e, ExecutionCrashed)]
    assert crashed[0].reason == "internal error: venue 'meteora' is not configured"
    assert isinstance(events[-1], OrderConfirmed)  # the next attempt routes among the venues there are


@pytest.mark.parametrize("order_type", ["limit", "sniper"])
async def test_order_types_execution_does_not_support_fail_as_our_error_never_loop(order_type):
    setup = Setup(policy=RetryPolicy(max_attempts=3, base_ms=500, max_crashed_runs=2))
    await setup.submit(order_type)
    events = await setup.run()

    assert types(events) == ["OrderSubmitted", "ExecutionCrashed", "OrderFailed"]
    assert events[-1].reason == f"internal error: {order_type} orders cannot be executed yet (crashed 2 runs)"


async def test_an_unreachable_log_is_raised_to_the_worker_and_recorded_as_nothing():
    setup = Setup()
    await setup.submit()

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("database unreachable")

    setup.store.append = unreachable  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await setup.execution.run(ORDER_ID)
    assert types(await setup.events()) == ["OrderSubmitted"]


# -- two runners -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("runners", [2, 5])
async def test_runners_racing_on_one_order_write_each_step_once_and_one_terminal_event(runners):
    setup = Setup()
    await setup.submit()
    await asyncio.gather(*(setup.execution.run(ORDER_ID) for _ in range(runners)))
    events = await setup.events()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    assert [r.version for r in await setup.store.read_stream(ORDER_ID)] == list(range(1, 7))


async def test_runners_racing_through_retries_and_crashes_end_the_order_once():
    meteora = FakeVenue("meteora", execute_outcomes=[venue_error(), raises(KeyError("x")), venue_error()])
    setup = Setup(meteora)
    await setup.submit()
    await asyncio.gather(*(setup.execution.run(ORDER_ID) for _ in range(3)))
    events = await setup.events()

    assert sum(isinstance(e, TERMINAL) for e in events) == 1
    assert Order.from_events(ORDER_ID, events).status in (OrderStatus.CONFIRMED, OrderStatus.FAILED)
    starts = [e.attempt for e in events if isinstance(e, RoutingStarted)]
    assert starts == list(range(1, len(starts) + 1))


async def test_a_crash_before_the_first_attempt_waits_its_backoff_and_still_takes_a_turn_of_the_limit():
    setup = Setup()
    await setup.submit()
    crash = ExecutionCrashed(attempt=0, reason="internal error: boom", retry_in_ms=400)
    await setup.store.append(ORDER_ID, [crash], expected_version=1)
    events = await setup.run()

    assert types(events) == ["OrderSubmitted", "ExecutionCrashed", *HAPPY[1:], "OrderConfirmed"]
    assert setup.clock.sleeps == pytest.approx([0.4])
    assert setup.limiter.turns == 1
