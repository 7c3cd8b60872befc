"""`Execution.run` without servers: the in-memory event store, a fake chain of real pools and a fake clock.

Every path of the error policy (a venue left out of routing, a transaction the chain drops retried as a failed
attempt, a lost answer asked about until the transaction lands or expires, our own errors recorded as crashed
runs and bounded, the infrastructure's raised), resuming from every status, two runners racing on one order,
and routing by size (one pool, or a split)."""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from msgspec.structs import replace

from commands.execute_order import EXPIRY_GRACE_S, Execution
from domain.events import (
    Event,
    ExecutionAttemptFailed,
    ExecutionCrashed,
    Fill,
    LeftOut,
    OrderConfirmed,
    OrderFailed,
    RouteLeg,
    RoutingStarted,
    TransactionBuilt,
    TransactionSubmitted,
    VenueSelected,
)
from domain.order import Order
from domain.order_type import OrderType
from domain.pools import CpmmPool
from domain.retry import RetryPolicy
from domain.route_plan import plan_route
from domain.routing import route_records
from domain.status import OrderStatus
from domain.tokens import TOKENS, Launch
from eventstore.memory import InMemoryEventStore
from tests.fakes import (
    FakeChain,
    FakeClock,
    NoLimit,
    Outcome,
    cpmm_pool,
    drops,
    lands_then,
    pending,
    raises,
    venue_error,
)
from venues.chain import TRANSACTION_LIFETIME_S, Landed, LegFill, SwapLeg, SwapTransaction

ORDER_ID = "6f1c0a52-3c1e-4f7e-9a57-2b8f0d4b8c11"
POLICY = RetryPolicy(max_attempts=3, base_ms=500, max_crashed_runs=3)
TERMINAL = (OrderConfirmed, OrderFailed)
RAYDIUM, METEORA = "raydium-cpmm-SOL-USDC-1", "meteora-cpmm-SOL-USDC-1"  # 150 and 151 USDC per SOL
POLL_S = 1.0


class Setup:
    def __init__(self, chain: FakeChain | None = None, policy: RetryPolicy = POLICY) -> None:
        self.clock = FakeClock()
        self.store = InMemoryEventStore(clock=self.clock.now)
        self.chain = chain or FakeChain()
        self.limiter = NoLimit()
        self.execution = Execution(
            store=self.store,
            chain=self.chain,
            policy=policy,
            limiter=self.limiter,
            clock=self.clock,
            status_poll_s=POLL_S,
            jitter=random.Random(1),
        )

    async def submit(self, order_type: str = "market", amount_in: str = "0.5") -> None:
        event = Order.submit("market", "SOL", "USDC", 50, amount_in=amount_in)
        if order_type != "market":  # accepted by a newer engine, say
            event = replace(event, order_type=OrderType(order_type))
        await self.store.append(ORDER_ID, [event], expected_version=0)

    async def events(self) -> list[Event]:
        return [r.event for r in await self.store.read_stream(ORDER_ID)]

    async def run(self) -> list[Event]:
        await self.execution.run(ORDER_ID)
        return await self.events()

    def landed(self) -> list[Landed]:
        return [outcome for outcome in self.chain.ledger.values() if isinstance(outcome, Landed)]

    def pool(self, pool_id: str) -> CpmmPool:
        return next(p for pools in self.chain.pools_by_venue.values() for p in pools if p.pool_id == pool_id)


def chain(*pools: CpmmPool, **outcomes: object) -> FakeChain:
    """A chain of `pools` (each its venue's only pool), failing as `outcomes` say."""
    return FakeChain(pools_by_venue={pool.venue: [pool] for pool in pools}, **outcomes)  # type: ignore[arg-type]


def types(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def tx_id(attempt: int) -> str:
    return f"{ORDER_ID}:{attempt}"


def swept(fake: FakeChain, pool_id: str, sol: int) -> Outcome:
    """A send outcome: someone else's swap of `sol` SOL lands in the pool first, moving its price down."""

    def outcome() -> None:
        pool = next(p for pools in fake.pools_by_venue.values() for p in pools if p.pool_id == pool_id)
        pool.swap("SOL", sol * 10**9, 0)

    return outcome


HAPPY = ["OrderSubmitted", "RoutingStarted", "VenueSelected", "TransactionBuilt", "TransactionSubmitted"]


async def test_a_new_order_is_routed_to_the_better_pool_and_confirmed():
    setup = Setup()
    await setup.submit()
    meteora_before = replace(setup.pool(METEORA))
    events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    selected = events[2]
    assert isinstance(selected, VenueSelected)
    assert selected.selected_venue == "meteora"
    assert [q.pool for q in selected.quotes] == [RAYDIUM, METEORA]
    assert [(leg.pool, leg.percent, leg.amount_in_raw) for leg in selected.route_plan] == [
        (METEORA, 100, 500_000_000)
    ]
    assert selected.left_out == ()
    expected_out = meteora_before.quote("SOL", 500_000_000, 0).amount_out_raw
    assert selected.amount_out_raw == expected_out
    assert events[-1] == OrderConfirmed(
        venue="meteora",
        tx_hash=f"tx-{tx_id(1)}",
        execution_price=selected.quotes[1].effective_price,
        amount_out=TOKENS["USDC"].value(expected_out),
        amount_out_raw=expected_out,
        fills=(
            Fill(
                venue="meteora",
                pool=METEORA,
                amount_in=Decimal("0.5"),
                amount_in_raw=500_000_000,
                amount_out=TOKENS["USDC"].value(expected_out),
                amount_out_raw=expected_out,
            ),
        ),
    )
    assert setup.chain.sent == [tx_id(1)]
    meteora_before.swap("SOL", 500_000_000, 0)
    assert setup.pool(METEORA) == meteora_before  # the swap moved the pool it went through, once
    assert setup.limiter.turns == 1
    assert setup.clock.sleeps == []


# -- routing by size ------------------------------------------------------------------------------------


async def test_a_small_order_takes_one_pool():
    setup = Setup()
    await setup.submit(amount_in="1")
    events = await setup.run()

    built = next(e for e in events if isinstance(e, TransactionBuilt))
    assert [leg.pool for leg in next(e for e in events if isinstance(e, VenueSelected)).route_plan] == [
        METEORA
    ]
    assert [i for i in built.instructions if i.startswith("swap:")] == [f"swap:{METEORA}"]
    assert setup.pool(RAYDIUM) == cpmm_pool("raydium", 150)  # untouched


async def test_a_large_order_splits_across_two_pools_and_each_leg_lands():
    setup = Setup()
    await setup.submit(amount_in="2000")
    events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    selected = events[2]
    assert isinstance(selected, VenueSelected)
    legs = selected.route_plan
    assert {leg.pool for leg in legs} == {RAYDIUM, METEORA}
    assert sum(leg.percent for leg in legs) == 100
    assert sum(leg.amount_in_raw for leg in legs) == 2_000 * 10**9
    assert selected.amount_out_raw == sum(leg.amount_out_raw for leg in legs)
    assert selected.amount_out_raw > max(q.amount_out_raw for q in selected.quotes)  # the split pays more
    assert selected.selected_venue == legs[0].venue == "meteora"  # the larger leg: the pricier pool
    built = events[3]
    assert isinstance(built, TransactionBuilt)
    assert [i for i in built.instructions if i.startswith("swap:")] == [f"swap:{leg.pool}" for leg in legs]
    confirmed = events[-1]
    assert isinstance(confirmed, OrderConfirmed)
    assert [(f.pool, f.amount_in_raw, f.amount_out_raw) for f in confirmed.fills] == [
        (leg.pool, leg.amount_in_raw, leg.amount_out_raw) for leg in legs
    ]
    assert confirmed.amount_out_raw == selected.amount_out_raw
    assert setup.pool(RAYDIUM) != cpmm_pool("raydium", 150)
    assert setup.pool(METEORA) != cpmm_pool("meteora", 151)
    assert len(setup.landed()) == 1  # one transaction, two swaps


# -- resuming from every status ------------------------------------------------------------------------


async def _log_up_to(setup: Setup, status: str) -> None:
    """Append the happy path's events one by one until the order reaches `status`."""
    await setup.submit()
    order = Order.from_events(ORDER_ID, await setup.events())
    pools = [pool for pools in setup.chain.pools_by_venue.values() for pool in pools]
    token_in, token_out = TOKENS["SOL"], TOKENS["USDC"]
    quotes, legs, short = route_records(plan_route(pools, "SOL", 500_000_000, 0), pools, token_in, token_out)
    select = lambda: order.select_route(quotes, legs, short)  # noqa: E731
    steps = {
        "routing": [order.start_attempt],
        "routing-selected": [order.start_attempt, select],
        "building": [order.start_attempt, select, order.build_transaction],
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
    assert setup.chain.sent == [tx_id(1)]
    assert [landed.client_tx_id for landed in setup.landed()] == [tx_id(1)]


def _transaction_of(events: list[Event]) -> SwapTransaction:
    order = Order.from_events(ORDER_ID, events)
    assert order.client_tx_id is not None and order.min_amount_out_raw is not None
    return SwapTransaction(
        client_tx_id=order.client_tx_id,
        order_id=ORDER_ID,
        token_in="SOL",
        token_out="USDC",
        legs=tuple(
            SwapLeg(venue=leg.venue, pool=leg.pool, amount_in_raw=leg.amount_in_raw)
            for leg in order.route_plan
        ),
        min_amount_out_raw=order.min_amount_out_raw,
        instructions=order.instructions,
        expires_at=0,
    )


async def test_a_resumed_submitted_order_asks_the_chain_first_and_never_sends_a_landed_transaction_again():
    setup = Setup()
    await _log_up_to(setup, "submitted")
    meteora = replace(setup.pool(METEORA))
    await setup.chain.send_transaction(_transaction_of(await setup.events()))  # landed before a crash
    events = await setup.run()

    assert setup.chain.sent == [tx_id(1)]  # only the send before the crash
    assert events[-1] == replace(events[-1], tx_hash=f"tx-{tx_id(1)}")
    assert types(events) == [*HAPPY, "OrderConfirmed"]
    [landed] = setup.landed()
    assert events[-1].amount_out_raw == landed.amount_out_raw
    meteora.swap("SOL", 500_000_000, 0)
    assert setup.pool(METEORA) == meteora  # swapped once


async def test_a_resumed_submitted_order_the_chain_dropped_fails_the_attempt_without_sending_it():
    setup = Setup(FakeChain(send_outcomes=[drops("blockhash expired")]))
    await _log_up_to(setup, "submitted")
    await setup.chain.send_transaction(_transaction_of(await setup.events()))  # dropped before a crash
    events = await setup.run()

    failure = next(e for e in events if isinstance(e, ExecutionAttemptFailed))
    assert (failure.attempt, failure.reason) == (1, "blockhash expired")
    assert setup.chain.sent == [tx_id(1), tx_id(2)]
    assert isinstance(events[-1], OrderConfirmed)


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


# -- routing: a venue that fails is left out; none left fails the attempt ----------------------------------


async def test_no_pools_fails_the_attempt_with_each_venues_reason_and_retries_after_the_backoff():
    setup = Setup(
        FakeChain(
            pools_outcomes={"raydium": [venue_error("pool closed")], "meteora": [raises(TimeoutError())]}
        )
    )
    await setup.submit()
    events = await setup.run()

    failure = events[2]
    assert failure == ExecutionAttemptFailed(
        attempt=1,
        reason="no venue quoted: raydium: pool closed; meteora: venue did not answer in time",
        retry_in_ms=failure.retry_in_ms,
    )
    assert types(events)[3:] == [*HAPPY[1:], "OrderConfirmed"]
    assert setup.clock.sleeps == pytest.approx([failure.retry_in_ms / 1000])
    assert setup.chain.sent == [tx_id(2)]


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (venue_error("venue error: pool busy"), "venue error: pool busy"),
        (raises(TimeoutError()), "venue did not answer in time"),
    ],
)
async def test_a_venue_that_fails_to_give_its_pools_is_left_out_and_the_decision_says_so(
    failure, reason, caplog
):
    # Raydium's pool is the better one, but it fails to answer.
    setup = Setup(
        chain(cpmm_pool("raydium", 152), cpmm_pool("meteora", 150), pools_outcomes={"raydium": [failure]})
    )
    await setup.submit()
    with caplog.at_level(logging.WARNING):
        events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    selected = events[2]
    assert isinstance(selected, VenueSelected)
    assert [q.venue for q in selected.quotes] == ["meteora"]
    assert selected.left_out == (LeftOut(venue="raydium", reason=reason),)
    assert selected.selected_venue == "meteora"
    assert any(getattr(r, "venue", None) == "raydium" for r in caplog.records)


async def test_a_venue_whose_pools_do_not_answer_within_the_timeout_is_left_out():
    setup = Setup(chain(cpmm_pool("raydium", 152), cpmm_pool("meteora", 150), hanging={"raydium"}))
    setup.execution.quote_timeout_s = 0.01
    await setup.submit()
    events = await setup.run()

    selected = events[2]
    assert isinstance(selected, VenueSelected)
    assert selected.left_out == (LeftOut(venue="raydium", reason="venue did not answer in time"),)
    assert [leg.venue for leg in selected.route_plan] == ["meteora"]
    assert isinstance(events[-1], OrderConfirmed)


# -- the chain drops the transaction: a failed attempt, retried with fresh quotes -------------------------


async def test_a_transaction_dropped_for_slippage_is_retried_with_fresh_quotes():
    setup = Setup()
    setup.chain.send_outcomes = [
        swept(setup.chain, METEORA, 100)
    ]  # meteora's price falls ~2 % before the swap lands
    await setup.submit()
    events = await setup.run()

    failure = next(e for e in events if isinstance(e, ExecutionAttemptFailed))
    assert failure.attempt == 1
    assert failure.reason.startswith("slippage exceeded")
    second = [e for e in events if isinstance(e, VenueSelected)][1]
    assert second.selected_venue == "raydium"  # the fresh quotes see meteora's fallen price
    assert isinstance(events[-1], OrderConfirmed)
    assert [landed.client_tx_id for landed in setup.landed()] == [tx_id(2)]


async def test_dropped_transactions_are_retried_with_growing_backoff_then_the_order_fails():
    setup = Setup(FakeChain(send_outcomes=[drops("blockhash expired")] * 3))
    await setup.submit()
    events = await setup.run()

    failures = [e for e in events if isinstance(e, ExecutionAttemptFailed)]
    assert [(f.attempt, f.reason) for f in failures] == [(1, "blockhash expired"), (2, "blockhash expired")]
    assert failures[1].retry_in_ms > failures[0].retry_in_ms
    assert setup.clock.sleeps == pytest.approx([f.retry_in_ms / 1000 for f in failures])  # by the clock
    assert events[-1] == OrderFailed(reason="blockhash expired", attempts=3)
    assert setup.chain.sent == [tx_id(1), tx_id(2), tx_id(3)]
    assert setup.landed() == []


async def test_a_retry_resumed_after_a_restart_waits_only_what_remains_of_the_backoff():
    setup = Setup(FakeChain(send_outcomes=[drops()]))
    await _log_up_to(setup, "submitted")
    await setup.execution.run(ORDER_ID)
    # Stop before the retry: a fresh log up to the failure, then a run started 0.1 s after it.
    events = await setup.events()
    failure = next(e for e in events if isinstance(e, ExecutionAttemptFailed))
    assert setup.clock.sleeps == pytest.approx([failure.retry_in_ms / 1000])

    later = Setup()
    for version, event in enumerate(events[: events.index(failure) + 1], start=1):
        await later.store.append(ORDER_ID, [event], expected_version=version - 1)
    later.clock.moment = later.clock.moment.replace(microsecond=100_000)
    await later.execution.run(ORDER_ID)
    assert later.clock.sleeps == [pytest.approx(failure.retry_in_ms / 1000 - 0.1)]
    assert isinstance((await later.events())[-1], OrderConfirmed)


# -- the chain's answer lost: asked about again, never sent as a new transaction --------------------------


@pytest.mark.parametrize(
    "failure", [venue_error("venue error: node busy"), raises(TimeoutError())], ids=["error", "timeout"]
)
async def test_a_send_that_fails_before_the_chain_took_it_is_sent_again_with_the_same_id(failure):
    setup = Setup(FakeChain(send_outcomes=[failure, failure]))
    await setup.submit()
    events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    assert setup.chain.sent == [tx_id(1)] * 3
    assert setup.clock.sleeps == [POLL_S, POLL_S]
    assert [landed.client_tx_id for landed in setup.landed()] == [tx_id(1)]


@pytest.mark.parametrize(
    ("statuses", "sends", "polls"),
    [
        ([], 1, 1),
        ([raises(TimeoutError())], 1, 2),
        ([venue_error("node behind")], 1, 2),
        ([pending()], 2, 1),
    ],
    ids=["landed", "status timed out once", "status failed once", "pending once: rebroadcast"],
)
async def test_a_timeout_on_send_polls_the_status_until_landed_and_never_makes_a_second_transaction(
    statuses, sends, polls
):
    # The chain took the transaction but its answer was lost; the status then answers as `statuses` say,
    # then that it landed. A pending transaction is sent again under its own id (a rebroadcast, as Solana
    # clients do until it lands or expires): the chain keeps it one transaction.
    setup = Setup(FakeChain(answers_lost=1, status_outcomes=list(statuses)))
    await setup.submit()
    events = await setup.run()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    assert setup.chain.sent == [tx_id(1)] * sends
    assert setup.clock.sleeps == [POLL_S] * polls
    [landed] = setup.landed()
    assert events[-1].tx_hash == landed.tx_hash
    assert events[-1].amount_out_raw == landed.amount_out_raw


async def test_a_transaction_the_chain_never_saw_fails_the_attempt_once_expired_and_the_next_uses_a_new_id():
    # The send times out before the chain took it; the chain does not answer until the transaction expired,
    # then says it never saw it: a definite answer, and it will never land (once past its expiry and the
    # grace given to a chain whose clock is behind ours).
    polls = TRANSACTION_LIFETIME_S + EXPIRY_GRACE_S + 1
    setup = Setup(
        FakeChain(
            send_outcomes=[raises(TimeoutError())],
            status_outcomes=[raises(TimeoutError())] * polls,
        )
    )
    await setup.submit()
    events = await setup.run()

    failure = next(e for e in events if isinstance(e, ExecutionAttemptFailed))
    assert failure.attempt == 1
    assert failure.reason == "transaction expired before it landed"
    # One wait after the lost send, one after each unanswered status; then the retry's backoff.
    assert setup.clock.sleeps == pytest.approx([POLL_S] * (1 + polls) + [failure.retry_in_ms / 1000])
    submitted = [e.client_tx_id for e in events if isinstance(e, TransactionSubmitted)]
    assert submitted == [tx_id(1), tx_id(2)]
    assert setup.chain.sent == [tx_id(1), tx_id(2)]
    assert [landed.client_tx_id for landed in setup.landed()] == [tx_id(2)]
    assert isinstance(events[-1], OrderConfirmed)


async def test_a_transaction_whose_fate_stays_unknown_past_expiry_is_asked_about_until_the_chain_answers():
    # The chain took the transaction, but the answer and then every status until well past the expiry were
    # lost: no new attempt may start before the chain says what became of it (it landed: one swap).
    polls = 2 * TRANSACTION_LIFETIME_S
    setup = Setup(FakeChain(answers_lost=1, status_outcomes=[raises(TimeoutError())] * polls))
    await setup.submit()
    events = await setup.run()

    assert not any(isinstance(e, ExecutionAttemptFailed) for e in events)
    assert setup.clock.sleeps == pytest.approx([POLL_S] * (1 + polls))
    assert setup.chain.sent == [tx_id(1)]
    assert [landed.client_tx_id for landed in setup.landed()] == [tx_id(1)]
    assert isinstance(events[-1], OrderConfirmed)


async def test_a_run_that_crashed_after_sending_is_confirmed_by_its_transaction_not_sent_a_second():
    # An adapter bug after the chain took the transaction: the run is recorded as crashed (the order back to
    # pending), and the next run finds that the transaction landed after all.
    setup = Setup(FakeChain(send_outcomes=[lands_then(KeyError("signature"))]))
    await setup.submit()
    events = await setup.run()

    assert types(events) == [*HAPPY, "ExecutionCrashed", "OrderConfirmed"]
    assert setup.chain.sent == [tx_id(1)]
    assert [landed.client_tx_id for landed in setup.landed()] == [tx_id(1)]
    assert events[-1].tx_hash == setup.landed()[0].tx_hash


# -- our own errors: crashed runs, bounded ----------------------------------------------------------------


@pytest.mark.parametrize("where", ["pools", "send", "status"])
async def test_a_chain_adapter_raising_a_programming_error_crashes_the_run_and_the_order_fails_after_three(
    where, caplog
):
    crash = [raises(KeyError("price"))] * 3
    outcomes = {"pools": {"pools_outcomes": {"meteora": crash}}}.get(where, {f"{where}_outcomes": crash})
    if where == "status":  # asked about only once a send's answer is lost (here: it never reached the chain)
        outcomes["send_outcomes"] = [raises(TimeoutError())]
    setup = Setup(chain(cpmm_pool("meteora", 150), **outcomes))
    await setup.submit()
    with caplog.at_level(logging.ERROR):
        events = await setup.run()

    crashes = [e for e in events if isinstance(e, ExecutionCrashed)]
    assert [c.reason for c in crashes] == ["internal error: KeyError: 'price'"] * 2
    assert crashes[1].retry_in_ms > crashes[0].retry_in_ms
    lost_answer = [POLL_S] if where == "status" else []
    assert setup.clock.sleeps == pytest.approx(lost_answer + [c.retry_in_ms / 1000 for c in crashes])
    # A status that crashes leaves the last transaction's fate unknown: no new attempt starts after it.
    attempts = 1 if where == "status" else 3
    assert events[-1] == OrderFailed(
        reason="internal error: KeyError: 'price' (crashed 3 runs)", attempts=attempts
    )
    assert sum(isinstance(e, TERMINAL) for e in events) == 1
    logged = [r for r in caplog.records if r.getMessage() == "order run crashed"]
    assert len(logged) == 3
    assert all(r.exc_info and isinstance(r.exc_info[1].__cause__, KeyError) for r in logged)
    assert setup.landed() == []


async def test_a_run_that_crashed_once_goes_on_and_confirms():
    setup = Setup(FakeChain(send_outcomes=[raises(ZeroDivisionError("division by zero"))]))
    await setup.submit()
    events = await setup.run()

    assert [type(e) for e in events if isinstance(e, ExecutionCrashed | OrderConfirmed)] == [
        ExecutionCrashed,
        OrderConfirmed,
    ]
    assert Order.from_events(ORDER_ID, events).crashed_runs == 1
    assert len(setup.landed()) == 1


# A log no code of ours wrote (the order was never armed): executing it would ignore its limit or checks.
@pytest.mark.parametrize("order_type", ["limit", "sniper"])
async def test_triggered_orders_never_armed_fail_as_our_error_never_loop(order_type):
    reason = f"a {order_type} order never armed cannot be executed"
    setup = Setup(policy=RetryPolicy(max_attempts=3, base_ms=500, max_crashed_runs=2))
    await setup.submit(order_type)
    events = await setup.run()

    assert types(events) == ["OrderSubmitted", "ExecutionCrashed", "OrderFailed"]
    assert events[-1].reason == f"internal error: {reason} (crashed 2 runs)"
    assert setup.chain.sent == []


async def test_an_unreachable_log_is_raised_to_the_worker_and_recorded_as_nothing():
    setup = Setup()
    await setup.submit()

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise ConnectionError("database unreachable")

    setup.store.append = unreachable  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await setup.execution.run(ORDER_ID)
    assert types(await setup.events()) == ["OrderSubmitted"]
    assert setup.chain.sent == []


# -- two runners -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("runners", [2, 5])
async def test_runners_racing_on_one_order_write_each_step_once_and_one_terminal_event(runners):
    setup = Setup()
    await setup.submit()
    await asyncio.gather(*(setup.execution.run(ORDER_ID) for _ in range(runners)))
    events = await setup.events()

    assert types(events) == [*HAPPY, "OrderConfirmed"]
    assert [r.version for r in await setup.store.read_stream(ORDER_ID)] == list(range(1, 7))
    assert [landed.client_tx_id for landed in setup.landed()] == [tx_id(1)]


async def test_runners_racing_through_retries_and_crashes_end_the_order_once():
    setup = Setup(FakeChain(send_outcomes=[drops(), raises(KeyError("x")), drops()]))
    await setup.submit()
    await asyncio.gather(*(setup.execution.run(ORDER_ID) for _ in range(3)))
    events = await setup.events()

    assert sum(isinstance(e, TERMINAL) for e in events) == 1
    assert Order.from_events(ORDER_ID, events).status in (OrderStatus.CONFIRMED, OrderStatus.FAILED)
    starts = [e.attempt for e in events if isinstance(e, RoutingStarted)]
    assert starts == list(range(1, len(starts) + 1))
    assert len(setup.landed()) <= 1


async def test_a_crash_before_the_first_attempt_waits_its_backoff_and_still_takes_a_turn_of_the_limit():
    setup = Setup()
    await setup.submit()
    crash = ExecutionCrashed(attempt=0, reason="internal error: boom", retry_in_ms=400)
    await setup.store.append(ORDER_ID, [crash], expected_version=1)
    events = await setup.run()

    assert types(events) == ["OrderSubmitted", "ExecutionCrashed", *HAPPY[1:], "OrderConfirmed"]
    assert setup.clock.sleeps == pytest.approx([0.4])
    assert setup.limiter.turns == 1


# -- a chain that answers with a transaction that is not the one sent -----------------------------------


def foreign(client_tx_id: str) -> Landed:
    """What someone else landed under the order's transaction id: 0.001 SOL, paying almost nothing."""
    fill = LegFill(
        venue="raydium", pool="raydium-cpmm-SOL-USDC-1", amount_in_raw=10**6, amount_out_raw=148, fee_raw=3
    )
    return Landed(
        client_tx_id=client_tx_id,
        order_id=ORDER_ID,
        tx_hash="someone-else",
        fills=(fill,),
        amount_out_raw=148,
        landed_at=0,
    )


async def test_a_landed_transaction_that_is_not_the_one_sent_never_confirms_the_order():
    # Someone sent other legs under the order's first transaction id before the worker did: the chain's
    # answer is that transaction, and the order must not be confirmed by it (nor wait on it).
    chain = FakeChain()
    chain.ledger[tx_id(1)] = foreign(tx_id(1))
    setup = Setup(chain)
    await setup.submit()
    events = await setup.run()

    failure = next(e for e in events if isinstance(e, ExecutionAttemptFailed))
    assert failure.reason == f"the chain's transaction {tx_id(1)} is not the one sent"
    confirmed = events[-1]
    assert isinstance(confirmed, OrderConfirmed) and confirmed.tx_hash == f"tx-{tx_id(2)}"
    assert confirmed.amount_out_raw > 70 * 10**6  # 0.5 SOL's worth, not what the foreign one paid


async def test_an_order_the_pools_cannot_fill_fails_at_once_without_retrying():
    setup = Setup()
    await setup.submit(amount_in="0.000000001")  # one lamport buys nothing from any pool
    events = await setup.run()

    assert types(events) == ["OrderSubmitted", "RoutingStarted", "OrderFailed"]
    assert events[-1] == OrderFailed(reason="the pools cannot pay out for 0.000000001 SOL", attempts=1)
    assert setup.clock.sleeps == []


# -- limit orders, once fired ---------------------------------------------------------------------------


async def fire_limit_order(setup: Setup, limit_price: str, fired_at_usdc_per_sol: int = 160) -> None:
    """A limit order on 0.5 SOL armed at `limit_price`, fired on a pool at `fired_at_usdc_per_sol` (where
    the price was then; the chain's pools are where they are now)."""
    submitted = Order.submit("limit", "SOL", "USDC", 50, amount_in="0.5")
    armed = Order.arm(submitted, setup.clock.now(), limit_price=limit_price)
    assert armed is not None
    order = Order.from_events(ORDER_ID, [submitted, armed])
    pools = [cpmm_pool("meteora", fired_at_usdc_per_sol)]
    plan = plan_route(pools, "SOL", order.amount_in_raw, 0)
    _, legs, _ = route_records(plan, pools, TOKENS["SOL"], TOKENS["USDC"])
    await setup.store.append(ORDER_ID, [submitted, armed, order.fire(legs)], expected_version=0)


async def test_a_fired_limit_order_runs_as_a_market_order_with_its_limit_as_the_floor():
    setup = Setup()
    await fire_limit_order(setup, "149")  # the pools pay about 150.4 per SOL after the fee
    events = await setup.run()

    assert types(events)[:4] == ["OrderSubmitted", "TriggerArmed", "TriggerFired", "RoutingStarted"]
    assert isinstance(events[-1], OrderConfirmed)
    assert events[-1].amount_out_raw >= 74_500_000
    assert setup.limiter.turns == 1  # a fired order starts under the rate limit, as a new market order does


async def test_a_limit_order_whose_price_fell_after_the_fire_is_never_sent_below_its_limit():
    setup = Setup(policy=RetryPolicy(max_attempts=2, base_ms=500))
    await fire_limit_order(setup, "151")  # above what any pool pays after its fee, now
    events = await setup.run()

    failures = [e for e in events if isinstance(e, ExecutionAttemptFailed | OrderFailed)]
    assert [type(e).__name__ for e in failures] == ["ExecutionAttemptFailed", "OrderFailed"]
    assert all("below the limit's 75.5 USDC" in e.reason for e in failures)
    assert setup.chain.sent == []


async def test_a_fired_sniper_order_past_its_deadline_ends_failed_instead_of_buying_late():
    """Its trigger fired in time, but its attempt (a first one held up by the rate limit, or a retry) would
    start after the launch plus maxDelayMs: it ends, nothing sent."""
    setup = Setup()
    launched_at = setup.clock.now() - timedelta(seconds=2)
    launch = Launch(symbol="PEPE", decimals=6, mint_authority=None, freeze_authority=None, launched_at=None)
    submitted = Order.submit("sniper", "SOL", "PEPE", 50, amount_in="0.5")
    armed = Order.arm(submitted, launched_at - timedelta(minutes=1), launch=launch, max_delay_ms=1000)
    assert armed is not None
    order = Order.from_events(ORDER_ID, [submitted, armed])
    leg = RouteLeg(
        venue="raydium",
        pool="raydium-cpmm-PEPE-SOL-1",
        percent=100,
        amount_in=Decimal("0.5"),
        amount_in_raw=order.amount_in_raw,
        amount_out=Decimal(9_000_000),
        amount_out_raw=9_000_000_000_000,
    )
    fired = order.fire((leg,), buy_by=launched_at + timedelta(seconds=1))
    await setup.store.append(ORDER_ID, [submitted, armed, fired], expected_version=0)
    events = await setup.run()

    assert types(events) == ["OrderSubmitted", "TriggerArmed", "TriggerFired", "OrderFailed"]
    assert events[-1] == OrderFailed(
        reason="not bought within maxDelayMs (1000 ms) of PEPE's launch", attempts=0
    )
    assert setup.chain.sent == []


# -- the worker stopping (SIGTERM): each run ends at its next event -----------------------------------------


class BlockingClock(FakeClock):
    """A clock whose waits never end by themselves; `asleep` is set once a wait has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.asleep = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.asleep.set()
        await asyncio.Event().wait()


async def test_a_run_begun_while_the_worker_stops_appends_nothing():
    setup = Setup()
    await setup.submit()
    setup.execution.stopping.set()

    assert types(await setup.run()) == ["OrderSubmitted"]
    assert setup.limiter.turns == 0


async def test_a_backoff_in_progress_ends_at_once_when_the_worker_stops_and_the_order_stays_pending():
    setup = Setup(FakeChain(send_outcomes=[drops("blockhash expired")]))
    clock = BlockingClock()
    setup.execution.clock = clock
    await setup.submit()
    run = asyncio.create_task(setup.execution.run(ORDER_ID))
    await clock.asleep.wait()  # the failed attempt is recorded, its backoff begun
    setup.execution.stopping.set()
    await asyncio.wait_for(run, 5)
    events = await setup.events()

    assert types(events)[-1] == "ExecutionAttemptFailed"
    assert Order.from_events(ORDER_ID, events).status == OrderStatus.PENDING
    assert setup.chain.sent == [tx_id(1)]  # no second attempt began
