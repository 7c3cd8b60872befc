"""The task broker: taskiq's in-memory broker in the embedded default, a Redis stream otherwise."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from commands.submit_order import Enqueue
from workers.claims import OrderClaims
from workers.tasks import EXECUTE_ORDER, execute_order

log = logging.getLogger(__name__)

QUEUE = "order-engine:orders"
CONSUMER_GROUP = "order-engine-workers"
# A delivery not acknowledged within this long is handed to another worker. Longer than a normal order
# (three attempts of a few seconds with backoff); a slower one delivered twice is harmless, because the
# second delivery finds the order claimed or finished.
IDLE_TIMEOUT_MS = 60_000
# The lock around reclaiming is released by itself if its holder is killed while holding it.
AUTOCLAIM_LOCK_TIMEOUT_S = 5.0


class OrderQueueBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, made to survive a flushed or briefly unreachable Redis.

    - A flush deletes the stream and its consumer group; the stock broker then fails every read with
      NOGROUP in a tight loop. Here the group is declared again and reading resumes; the orders that were
      queued are found again by the recovery sweep.
    - When the connection drops, taskiq starts listening again and drops what it had prefetched; those
      deliveries stay pending under this consumer, and the stock broker reclaims them only after
      `IDLE_TIMEOUT_MS`, and only once new messages arrive. Here every (re)start of listening first takes
      back this consumer's own pending deliveries.
    """

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        while True:
            try:
                async for message in self._own_pending():
                    yield message
                async for message in super().listen():
                    yield message
            except ResponseError as error:
                if "NOGROUP" not in str(error) and "UNBLOCKED" not in str(error):
                    raise
                log.warning("the order queue vanished (Redis flushed?); declaring it again")
                await self._declare_consumer_group()

    async def _own_pending(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            fetched = await redis.xreadgroup(
                self.consumer_group_name, self.consumer_name, {self.queue_name: "0"}, count=1000
            )
        for stream, entries in fetched or []:
            for entry_id, fields in entries:
                if fields:  # an entry trimmed away since it was delivered has no data left
                    yield AckableMessage(
                        data=fields[b"data"], ack=self._ack_generator(id=entry_id, queue_name=stream)
                    )


def make_broker(redis_url: str | None, consumer_name: str) -> AsyncBroker:
    """`consumer_name` names this process in the stream's consumer group: its worker id, so that the
    deliveries of a worker that is gone can be found and handed back (`workers/consumers.py`)."""
    broker: AsyncBroker
    if redis_url is None:
        broker = InMemoryBroker(max_async_tasks=10_000, propagate_exceptions=False)
    else:
        broker = OrderQueueBroker(
            redis_url,
            queue_name=QUEUE,
            consumer_group_name=CONSUMER_GROUP,
            consumer_name=consumer_name,
            idle_timeout=IDLE_TIMEOUT_MS,
            unacknowledged_lock_timeout=AUTOCLAIM_LOCK_TIMEOUT_S,
            xread_count=1,  # take one order at a time, so idle workers get the rest
            # A group created anew (first start, or after a flush) reads the stream from its start: orders
            # enqueued before it existed must not be skipped.
            consumer_id="0",
            xread_block=1000,
        )
    broker.register_task(execute_order, task_name=EXECUTE_ORDER)
    return broker


def make_enqueue(broker: AsyncBroker, claims: OrderClaims) -> Enqueue:
    task = broker.find_task(EXECUTE_ORDER)
    if task is None:
        raise RuntimeError(f"the broker has no {EXECUTE_ORDER!r} task registered (make_broker registers it)")

    async def enqueue(order_id: str) -> None:
        await claims.mark_queued(order_id)
        await task.kiq(order_id)

    return enqueue
