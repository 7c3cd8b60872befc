"""Which orders the relay (`workers/relay.py`) hands to the queue, and its in-memory checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from msgspec.structs import replace

from commands.submit_order import SubmitOrder, submit_order
from domain.order_type import OrderType
from eventstore.base import LOG_START
from eventstore.memory import InMemoryEventStore
from workers.relay import HORIZON_S, InMemoryOrderRelay, orders_to_queue

MARKET = SubmitOrder(
    order_type=OrderType.MARKET, token_in="SOL", token_out="USDC", amount_in=Decimal("0.5"), slippage_bps=50
)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def test_market_orders_are_queued_in_log_order_and_waiting_ones_are_not():
    store = InMemoryEventStore(clock=lambda: NOW)
    first = await submit_order(MARKET, store)
    await submit_order(replace(MARKET, order_type=OrderType.LIMIT, limit_price="1000"), store)
    second = await submit_order(MARKET, store)

    batch = await store.read_all(LOG_START, 100)
    assert orders_to_queue(batch, NOW) == [first.order_id, second.order_id]


async def test_an_order_submitted_before_the_horizon_is_left_to_the_recovery_sweep():
    """A relay that comes back after a long absence (or a flushed Redis: no checkpoint, the log read from
    its start) must not queue the whole history again."""
    submitted_at = NOW - timedelta(seconds=HORIZON_S)
    store = InMemoryEventStore(clock=lambda: submitted_at)
    at_the_horizon = await submit_order(MARKET, store)
    store.clock = lambda: submitted_at - timedelta(microseconds=1)
    await submit_order(MARKET, store)  # just past it

    assert orders_to_queue(await store.read_all(LOG_START, 100), NOW) == [at_the_horizon.order_id]


async def test_the_in_memory_relay_refuses_a_batch_that_does_not_follow_its_checkpoint():
    store, queued = InMemoryEventStore(), []

    async def enqueue(order_id: str) -> None:
        queued.append(order_id)

    relay = InMemoryOrderRelay(enqueue)
    submitted = [await submit_order(MARKET, store) for _ in range(3)]
    first = await store.read_all(LOG_START, 1)
    assert await relay.apply(LOG_START, first)
    rest = await store.read_all(first[-1].log_position, 100)
    assert not await relay.apply(LOG_START, rest)  # another round got there first
    assert await relay.apply(first[-1].log_position, rest)

    assert queued == [s.order_id for s in submitted]
    assert await relay.position() == rest[-1].log_position
