"""Executing orders: concurrency limits, retries with backoff, slippage, and duplicate deliveries."""

from __future__ import annotations

import asyncio
from datetime import datetime

from commands.execute_order import Execution
from domain.events import (
    ExecutionAttemptFailed,
    OrderConfirmed,
    OrderFailed,
    RoutingStarted,
    TransactionSubmitted,
)
from eventstore.base import RecordedEvent
from market.in_process import InProcessChain
from market.ledger import CHAIN_ERRORS
from tests.fakes import FakeChain, raises
from tests.harness import engine_settings, project_everything, running_engine
from venues.chain import Dropped, Landed, SwapTransaction
from workers.recovery import sweep_once

TERMINAL = (OrderConfirmed, OrderFailed)


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, change in edges:
        open_now += change
        peak = max(peak, open_now)
    return peak


def execution_interval(stream: list[RecordedEvent]) -> tuple[datetime, datetime]:
    started = next(r.recorded_at for r in stream if isinstance(r.event, RoutingStarted))
    return started, stream[-1].recorded_at


async def test_thirty_orders_all_confirm_and_never_more_than_ten_execute_at_once(backend):
    settings = engine_settings(backend, worker_concurrency=10)
    async with running_engine(settings) as engine:
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(30)))
        results = await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
        streams = [await engine.services.store.read_stream(order_id) for order_id in order_ids]

    assert [messages[-1]["status"] for messages, _ in results] == ["confirmed"] * 30
    peak = max_overlap([execution_interval(stream) for stream in streams])
    assert peak <= 10
    assert peak >= 5, "orders should have executed side by side"


async def test_failing_venue_gives_three_attempts_with_growing_backoff_then_order_failed(backend):
    settings = engine_settings(backend, mock_failure_rate=1.0, max_attempts=3, retry_base_ms=60)
    async with running_engine(settings) as engine:
        order_id = await engine.submit()
        messages, close_code = await engine.stream(order_id)
        stream = await engine.services.store.read_stream(order_id)
        await project_everything(engine.services)
        view = (await engine.http.get(f"/api/orders/{order_id}")).json()

    assert close_code == 1000
    failures = [r for r in stream if isinstance(r.event, ExecutionAttemptFailed)]
    assert [f.event.attempt for f in failures] == [1, 2]
    delays = [f.event.retry_in_ms for f in failures]
    assert delays[1] > delays[0] > 0
    # The delay really happened: the next attempt started no sooner than the failure said it would.
    for failure in failures:
        retry = next(
            r
            for r in stream
            if isinstance(r.event, RoutingStarted) and r.event.attempt == failure.event.attempt + 1
        )
        waited_ms = (retry.recorded_at - failure.recorded_at).total_seconds() * 1000
        assert waited_ms >= failure.event.retry_in_ms - 5
    assert [r.event.attempt for r in stream if isinstance(r.event, RoutingStarted)] == [1, 2, 3]
    final = messages[-1]
    assert final["type"] == "OrderFailed" and final["status"] == "failed"
    assert final["attempts"] == 3 and final["reason"] in CHAIN_ERRORS
    assert [m["status"] for m in messages if m["type"] == "ExecutionAttemptFailed"] == ["pending", "pending"]
    assert view["status"] == "failed"
    assert view["failureReason"] == final["reason"]
    assert view["attempts"] == 3


class AdverseTrader(InProcessChain):
    """The market in this process, where another trader sells 2,000 SOL into each pool of a transaction just
    before it lands: the price moves against the order by about a percent or more."""

    async def send_transaction(self, tx: SwapTransaction) -> Landed | Dropped:
        for leg in tx.legs:
            await self.market.ledger.swap_now(leg.pool, tx.token_in, 2_000 * 10**9)
        return await super().send_transaction(tx)


async def test_price_moving_past_the_slippage_limit_fails_the_attempt(sqlite_url):
    settings = engine_settings({"database_url": sqlite_url, "redis_url": None}, max_attempts=2)
    adverse = lambda services: AdverseTrader(services.market)  # noqa: E731
    async with running_engine(settings, chain=adverse) as engine:
        tolerant = await engine.submit(slippageBps=2000)
        strict = await engine.submit(slippageBps=10)
        (tolerant_messages, _), (strict_messages, _) = await asyncio.gather(
            engine.stream(tolerant), engine.stream(strict)
        )

    assert tolerant_messages[-1]["type"] == "OrderConfirmed"
    confirmed = tolerant_messages[-1]
    floor = next(m for m in tolerant_messages if m["type"] == "TransactionBuilt")["minAmountOutRaw"]
    assert (
        int(floor)
        <= int(confirmed["amountOutRaw"])
        < int(next(m for m in tolerant_messages if m["type"] == "VenueSelected")["amountOutRaw"])
    )
    reasons = [m["reason"] for m in strict_messages if m["type"] in ("ExecutionAttemptFailed", "OrderFailed")]
    assert len(reasons) == 2
    assert all(reason.startswith("slippage exceeded") for reason in reasons)
    assert strict_messages[-1]["type"] == "OrderFailed"


async def test_a_task_delivered_twice_executes_the_order_once(backend):
    async with running_engine(engine_settings(backend)) as engine:
        order_id = await engine.submit()
        await engine.services.enqueue(order_id)  # the same order delivered again
        await engine.services.enqueue(order_id)
        await engine.stream(order_id)
        stream = await engine.services.store.read_stream(order_id)

    assert [r.version for r in stream] == list(range(1, len(stream) + 1))
    assert sum(isinstance(r.event, TERMINAL) for r in stream) == 1
    assert sum(isinstance(r.event, TransactionSubmitted) for r in stream) == 1


async def test_two_runners_racing_on_one_order_write_one_terminal_event(backend):
    """Even without the claim (a lease that ran out, say), expected versions let only one runner write."""
    async with running_engine(engine_settings(backend), worker=False) as engine:
        order_id = await engine.submit()
        execution: Execution = engine.services.make_executor().execution
        await asyncio.gather(*(execution.run(order_id) for _ in range(5)))
        stream = await engine.services.store.read_stream(order_id)

    assert [r.version for r in stream] == list(range(1, len(stream) + 1))
    terminal = [r.event for r in stream if isinstance(r.event, TERMINAL)]
    assert len(terminal) == 1
    assert sum(isinstance(r.event, RoutingStarted) for r in stream) == 1


async def test_an_order_whose_run_keeps_crashing_fails_and_the_sweep_leaves_it_alone(backend):
    """A poison order (a venue adapter raising KeyError every time) ends after MAX_CRASHED_RUNS crashed
    runs, instead of being enqueued again by the recovery sweep forever."""
    crash = [raises(KeyError("price"))] * 100
    crashing = lambda _: FakeChain(pools_outcomes={"raydium": crash, "meteora": list(crash)})  # noqa: E731
    settings = engine_settings(backend, max_crashed_runs=2, retry_base_ms=10)
    async with running_engine(settings, chain=crashing) as engine:
        order_id = await engine.submit()
        messages, close_code = await engine.stream(order_id)
        await project_everything(engine.services)
        services = engine.services
        swept = await sweep_once(services.queries, services.claims, services.enqueue, grace_s=0)

    assert close_code == 1000
    assert [m["type"] for m in messages] == [
        "OrderSubmitted",
        "RoutingStarted",
        "ExecutionCrashed",
        "RoutingStarted",
        "OrderFailed",
    ]
    assert messages[2]["status"] == "pending"
    assert messages[2]["reason"] == "internal error: KeyError: 'price'"
    assert messages[-1]["reason"] == "internal error: KeyError: 'price' (crashed 2 runs)"
    assert order_id not in swept
