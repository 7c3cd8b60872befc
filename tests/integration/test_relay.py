"""The relay (`workers/relay.py`) against the real PostgreSQL log and Redis queue: every market order
submitted reaches the queue exactly once, however many projectors follow the log at once, and a round the
queue refuses loses none."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import msgspec
import psycopg
import pytest
from redis.asyncio import Redis

from commands.submit_order import SubmitOrder, submit_order
from domain.order_type import OrderType
from engine.services import QUEUED_TTL_S, Services
from eventstore.base import LOG_START
from projections.projector import Projector
from tests.harness import engine_settings, running_engine
from workers.claims import QUEUED_PREFIX
from workers.queue import QUEUE
from workers.relay import RedisOrderRelay

MARKET = SubmitOrder(
    order_type=OrderType.MARKET, token_in="SOL", token_out="USDC", amount_in=Decimal("0.5"), slippage_bps=50
)
LIMIT = msgspec.structs.replace(MARKET, order_type=OrderType.LIMIT, limit_price="1000")


async def queued_order_ids(redis: Redis) -> list[str]:
    """The order of each entry in the queue's stream, in stream order."""
    entries = await redis.xrange(QUEUE)
    return [msgspec.json.decode(fields[b"data"])["args"][0] for _, fields in entries]


async def submit_all(services: Services, commands: list[SubmitOrder]) -> list[str]:
    submitted = await asyncio.gather(*(submit_order(command, services.store) for command in commands))
    return [s.order_id for s in submitted]


async def test_concurrent_projectors_queue_each_market_order_exactly_once(postgres_url, redis_url):
    services = Services(engine_settings({"database_url": postgres_url, "redis_url": redis_url}))
    redis = Redis.from_url(redis_url)
    try:
        market_ids = await submit_all(services, [MARKET] * 60)
        limit_ids = await submit_all(services, [LIMIT] * 10)  # armed: the trigger stage queues them
        market_ids += await submit_all(services, [MARKET] * 60)
        # Four followers of the log, each with its own relay on the same Redis, racing over small batches.
        relays = [RedisOrderRelay(redis, services.queue_entry, QUEUED_TTL_S) for _ in range(4)]
        projectors = [Projector(services.store, services.signal, [relay], batch_size=7) for relay in relays]
        await asyncio.gather(*(p.catch_up(relay) for p, relay in zip(projectors, relays, strict=True)))

        queued = await queued_order_ids(redis)
        markers = await redis.exists(*(f"{QUEUED_PREFIX}:{order_id}" for order_id in market_ids))
        position = await relays[0].position()
        head = (await services.store.read_all(LOG_START, 1_000))[-1].log_position
    finally:
        await redis.aclose()
        await services.stop()

    assert sorted(queued) == sorted(market_ids)  # each once, and no limit order
    assert not set(queued) & set(limit_ids)
    assert markers == len(market_ids)  # the recovery sweep sees them as held
    assert position == head


async def test_a_round_the_queue_refuses_queues_nothing_and_the_next_queues_every_order(
    postgres_url, redis_url
):
    services = Services(engine_settings({"database_url": postgres_url, "redis_url": redis_url}))
    redis = Redis.from_url(redis_url)
    refusing = True

    def queue_entry(order_id: str) -> bytes:
        if refusing:
            raise ConnectionError("the queue is away")
        return services.queue_entry(order_id)

    relay = RedisOrderRelay(redis, queue_entry, QUEUED_TTL_S)
    projector = Projector(services.store, services.signal, [relay])
    try:
        order_ids = await submit_all(services, [MARKET] * 5)
        with pytest.raises(ConnectionError):
            await projector.catch_up(relay)
        refused = (await queued_order_ids(redis), await relay.position())
        refusing = False
        await projector.catch_up(relay)
        queued = await queued_order_ids(redis)
    finally:
        await redis.aclose()
        await services.stop()

    assert refused == ([], LOG_START)
    assert sorted(queued) == sorted(order_ids)


async def test_a_market_order_starts_while_the_orders_table_is_locked(postgres_url, redis_url):
    """The relay is one more projection of the projector's round, applied after the `orders` table's: a lock
    that holds that table's writes (a migration's `ALTER TABLE`, the rebuild's swap; here `LOCK TABLE`, which
    takes no transaction id, so the log's horizon does not move) must hold the read side only, as it did
    when the POST queued the order itself. Fails while the relay waits for the `orders` projection."""
    async with (
        running_engine(engine_settings({"database_url": postgres_url, "redis_url": redis_url})) as engine,
        await psycopg.AsyncConnection.connect(postgres_url) as locker,
    ):
        await locker.execute("LOCK TABLE orders IN SHARE MODE")  # reads go on, writes wait
        order_id = await engine.submit()
        async with asyncio.timeout(20):
            messages, _ = await engine.stream(order_id)
        await locker.rollback()

    assert messages[-1]["status"] == "confirmed"


async def test_market_orders_start_with_no_projector_running(postgres_url, redis_url):
    """The relay runs in the worker processes: orders do not wait for the read side's projector."""
    settings = engine_settings({"database_url": postgres_url, "redis_url": redis_url})
    async with running_engine(settings, projector=False) as engine:
        order_ids = [await engine.submit() for _ in range(3)]
        async with asyncio.timeout(20):
            ends = [(await engine.stream(order_id))[0][-1]["status"] for order_id in order_ids]
        table_position = await engine.services.projector.projections[0].position()

    assert ends == ["confirmed"] * 3
    assert table_position == LOG_START  # no projector ran
