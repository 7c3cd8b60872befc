"""`submit_order` without servers: the in-memory event store, and the relay (`workers/relay.py`) over it
with a list as the queue."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from msgspec.structs import replace

from commands.submit_order import IdempotencyKeyReused, SubmitOrder, submit_order
from domain.events import OrderSubmitted
from domain.order import OrderRejected, OrderUnprocessable
from domain.order_type import OrderType
from eventstore.base import LOG_START
from eventstore.memory import InMemoryEventStore
from workers.relay import InMemoryOrderRelay

ORDER = SubmitOrder(
    order_type=OrderType.MARKET, token_in="SOL", token_out="USDC", amount_in=Decimal("0.5"), slippage_bps=50
)


async def queued(store: InMemoryEventStore) -> list[str]:
    """The orders the relay hands to the queue from everything `store` holds."""
    order_ids: list[str] = []

    async def enqueue(order_id: str) -> None:
        order_ids.append(order_id)

    if batch := await store.read_all(LOG_START, 10_000):
        assert await InMemoryOrderRelay(enqueue).apply(LOG_START, batch)
    return order_ids


async def test_a_new_order_is_recorded_for_the_relay_to_queue():
    store = InMemoryEventStore()
    submitted = await submit_order(replace(ORDER, correlation_id="req-1"), store)

    [recorded] = await store.read_stream(submitted.order_id)
    assert submitted.created
    assert recorded.version == 1
    assert recorded.event == OrderSubmitted(
        order_type=OrderType.MARKET,
        token_in="SOL",
        token_out="USDC",
        amount_in=Decimal("0.5"),
        amount_in_raw=500_000_000,
        slippage_bps=50,
    )
    assert recorded.metadata == {"correlationId": "req-1"}
    assert await queued(store) == [submitted.order_id]


async def test_orders_without_a_key_are_distinct_orders():
    store = InMemoryEventStore()
    first = await submit_order(ORDER, store)
    second = await submit_order(ORDER, store)
    assert first.order_id != second.order_id
    assert await queued(store) == [first.order_id, second.order_id]


async def test_an_idempotent_repeat_answers_the_same_order_and_records_and_enqueues_nothing():
    store = InMemoryEventStore()
    keyed = replace(ORDER, idempotency_key="K-1")
    first = await submit_order(keyed, store)
    repeat = await submit_order(keyed, store)

    assert (first.created, repeat.created) == (True, False)
    assert repeat.order_id == first.order_id
    assert len(await store.read_stream(first.order_id)) == 1
    assert await queued(store) == [first.order_id]
    assert (await store.read_stream(first.order_id))[0].metadata["idempotencyKey"] == "K-1"


@pytest.mark.parametrize(
    "repeat",
    [{"amount_in": None, "amount_in_raw": "500000000"}, {"amount_in": Decimal("0.500000000")}],
    ids=["in base units", "with trailing zeros"],
)
async def test_a_repeat_giving_the_same_amount_another_way_is_the_same_order(repeat):
    store = InMemoryEventStore()
    first = await submit_order(replace(ORDER, idempotency_key="K-3"), store)
    again = await submit_order(replace(ORDER, idempotency_key="K-3", **repeat), store)

    assert (again.order_id, again.created) == (first.order_id, False)
    assert await queued(store) == [first.order_id]


async def test_racing_repeats_create_one_order():
    store = InMemoryEventStore()
    keyed = replace(ORDER, idempotency_key="K-race")
    results = await asyncio.gather(*(submit_order(keyed, store) for _ in range(5)))

    assert len({r.order_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert await queued(store) == [results[0].order_id]


@pytest.mark.parametrize(
    "change",
    [
        {"amount_in": Decimal("0.6")},
        {"amount_in": Decimal("0.500000001")},
        {"token_out": "USDT"},
        {"slippage_bps": 51},
    ],
)
async def test_a_key_reused_for_another_order_is_refused_and_records_nothing(change):
    store = InMemoryEventStore()
    first = await submit_order(replace(ORDER, idempotency_key="K-2"), store)
    with pytest.raises(IdempotencyKeyReused):
        await submit_order(replace(ORDER, idempotency_key="K-2", **change), store)

    assert len(await store.read_stream(first.order_id)) == 1
    assert await queued(store) == [first.order_id]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"token_in": "DOGE"}, OrderRejected),
        ({"amount_in": Decimal(0)}, OrderRejected),
        ({"amount_in": Decimal("0.0000000001")}, OrderRejected),
        ({"amount_in": None, "amount_in_raw": "05"}, OrderRejected),
        ({"order_type": "limit"}, OrderRejected),  # without its limit
        ({"limit_price": Decimal(150)}, OrderRejected),  # a market order with a limit
        ({"order_type": "sniper", "token_out": "PEPE"}, OrderUnprocessable),  # a token nobody announced
    ],
)
async def test_a_refused_order_records_and_enqueues_nothing(change, error):
    store = InMemoryEventStore()
    with pytest.raises(error):
        await submit_order(replace(ORDER, **change), store)
    assert await store.count_after(LOG_START) == 0
    assert await queued(store) == []
