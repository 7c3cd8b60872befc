"""The task broker: taskiq's in-memory broker in the embedded default, a Redis stream otherwise."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from taskiq import AckableMessage, AsyncBroker, BrokerMessage, InMemoryBroker, TaskiqMessage
from taskiq_redis import RedisStreamBroker

from commands.queue import Enqueue
from eventstore.cancelling import stop_if_cancelled
from eventstore.grouped import Grouped
from workers.claims import OrderClaims
from workers.queue import CONSUMER_GROUP, QUEUE
from workers.tasks import EXECUTE_ORDER, execute_order

log = logging.getLogger(__name__)

# A delivery not acknowledged within this long is handed to another worker. Longer than a normal order
# (three attempts of a few seconds with backoff); a slower one delivered twice is harmless, because the
# second delivery finds the order claimed or finished.
IDLE_TIMEOUT_MS = 60_000
# The lock around reclaiming is released by itself if its holder is killed while holding it.
AUTOCLAIM_LOCK_TIMEOUT_S = 5.0


class OrderQueueBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, made to survive a flushed or briefly unreachable Redis, and to take
    fewer round trips per order.

    - A flush deletes the stream and its consumer group; the stock broker then fails every read with
      NOGROUP in a tight loop. Here the group is declared again and reading resumes; the orders that were
      queued are found again by the recovery sweep.
    - When the connection drops, taskiq starts listening again and drops what it had prefetched; those
      deliveries stay pending under this consumer, and the stock broker reclaims them only after
      `IDLE_TIMEOUT_MS`, and only once new messages arrive. Here every (re)start of listening first takes
      back this consumer's own pending deliveries.
    - The stock broker looks for deliveries idle past `IDLE_TIMEOUT_MS` after every read (three more
      commands per order, under a lock); here at most every `RECLAIM_EVERY_S`, without a lock (XAUTOCLAIM
      is atomic: two consumers never claim one entry). Every command goes through one client, instead of a
      client built for each (which costs more than the command), and orders enqueued together share one
      round trip.
    """

    RECLAIM_EVERY_S = 1.0

    @functools.cached_property
    def redis(self) -> Redis:
        return Redis(connection_pool=self.connection_pool)

    @functools.cached_property
    def _kicks(self) -> Grouped[bytes]:
        return Grouped(self._add_all)

    async def kick(self, message: BrokerMessage) -> None:
        await self._kicks.add(message.message)

    async def _add_all(self, messages: list[bytes]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.xadd(self.queue_name, {b"data": message})
            await pipe.execute()

    def _ack_generator(self, id: str, queue_name: Any) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            await self.redis.xack(queue_name, self.consumer_group_name, id)

        return ack

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        while True:
            stop_if_cancelled()
            try:
                async for message in self._entries("0", count=1000):  # this consumer's own pending ones
                    yield message
                async for message in self._deliveries():
                    yield message
            except ResponseError as error:
                if "NOGROUP" not in str(error) and "UNBLOCKED" not in str(error):
                    raise
                log.warning("the order queue vanished (Redis flushed?); declaring it again")
                await self._declare_consumer_group()

    async def _deliveries(self) -> AsyncGenerator[AckableMessage, None]:
        reclaimed_at = time.monotonic()
        while True:
            async for message in self._entries(">", count=self.count, block=self.block):
                yield message
            # While the queue is empty this loop yields nothing: a read whose cancellation was lost would
            # go on reading for ever, and taskiq waits for it in a cleanup shielded from cancellation.
            stop_if_cancelled()
            if time.monotonic() - reclaimed_at >= self.RECLAIM_EVERY_S:
                reclaimed_at = time.monotonic()
                reclaimed: Any = await self.redis.xautoclaim(
                    self.queue_name,
                    self.consumer_group_name,
                    self.consumer_name,
                    min_idle_time=self.idle_timeout,
                    count=self.unacknowledged_batch_size,
                )
                for message in self._messages(self.queue_name, reclaimed[1]):
                    yield message

    async def _entries(
        self, after: str, count: int | None, block: int | None = None
    ) -> AsyncGenerator[AckableMessage, None]:
        """Entries read for this consumer: new ones (`after` ">") or its own pending ones (`after` "0")."""
        fetched: Any = await self.redis.xreadgroup(
            self.consumer_group_name, self.consumer_name, {self.queue_name: after}, count=count, block=block
        )
        for stream, entries in fetched or []:
            for message in self._messages(stream, entries):
                yield message

    def _messages(self, stream: Any, entries: list[Any]) -> Iterator[AckableMessage]:
        """`entries` of `stream` (its name, as Redis sent it) as deliveries."""
        for entry_id, fields in entries:
            if fields:  # an entry trimmed away since it was delivered has no data left
                yield AckableMessage(data=fields[b"data"], ack=self._ack_generator(entry_id, stream))


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


def queue_entry(broker: AsyncBroker, order_id: str) -> bytes:
    """The queue entry that has a worker execute `order_id`: the message `kiq` would send (the relay,
    `workers/relay.py`, writes it to the stream itself, in the script that moves its checkpoint)."""
    message = TaskiqMessage(
        task_id=broker.id_generator(),
        task_name=EXECUTE_ORDER,
        labels={},
        labels_types={},
        args=[order_id],
        kwargs={},
    )
    return broker.formatter.dumps(message).message


def make_enqueue(broker: AsyncBroker, claims: OrderClaims) -> Enqueue:
    task = broker.find_task(EXECUTE_ORDER)
    if task is None:
        raise RuntimeError(f"the broker has no {EXECUTE_ORDER!r} task registered (make_broker registers it)")

    async def enqueue(order_id: str) -> None:
        await claims.mark_queued(order_id)
        await task.kiq(order_id)

    return enqueue
