"""Wake-ups after an append: a hint that an order has new events. The log stays the data.

A wake-up may be lost (Redis restarting, a publisher dying right after its commit); everyone who
listens also re-reads the log on a timer, so a lost wake-up costs latency, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from eventstore.cancelling import stop_if_cancelled
from eventstore.grouped import Grouped

log = logging.getLogger(__name__)

ANY_ORDER = "*"  # sent after a listener reconnects: anything may have been appended meanwhile
CHANNEL = "order-engine:appended"
CLOSE_TIMEOUT_S = 1.0


class AppendSignal(Protocol):
    async def publish(self, order_id: str) -> None: ...

    def listen(self) -> AsyncIterator[str]:
        """Order ids as they are appended to (or ANY_ORDER), for as long as it is iterated."""
        ...


class InProcessSignal:
    """For the embedded default, where every appender and listener share one process."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[str]] = set()

    async def publish(self, order_id: str) -> None:
        for queue in self._queues:
            queue.put_nowait(order_id)

    async def listen(self) -> AsyncIterator[str]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)


class RedisSignal:
    """Redis pub/sub, so that an API process hears of appends made by any worker process. Wake-ups published
    together share a round trip (`Grouped`)."""

    def __init__(self, redis: Redis, reconnect_delay_s: float = 0.5) -> None:
        self.redis = redis
        self.reconnect_delay_s = reconnect_delay_s
        self._wakeups = Grouped(self._publish_all)

    async def publish(self, order_id: str) -> None:
        await self._wakeups.add(order_id)

    async def _publish_all(self, order_ids: list[str]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for order_id in dict.fromkeys(order_ids):
                    pipe.publish(CHANNEL, order_id)
                await pipe.execute()
        except RedisError as error:  # the listeners' timers cover for it
            log.warning("%d append wake-ups not published: %s", len(order_ids), error)

    async def listen(self) -> AsyncIterator[str]:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                stop_if_cancelled()
                yield ANY_ORDER
                async for message in pubsub.listen():
                    stop_if_cancelled()
                    yield message["data"].decode()
            except (RedisError, OSError) as error:
                stop_if_cancelled(error)  # redis-py reports a cancelled read as a lost connection
                log.warning("append wake-ups interrupted, reconnecting: %s", error)
                await asyncio.sleep(self.reconnect_delay_s)
            finally:
                # Bounded: closing a connection whose read was cancelled midway can wait forever.
                with contextlib.suppress(RedisError, OSError):  # OSError: TimeoutError too
                    async with asyncio.timeout(CLOSE_TIMEOUT_S):
                        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py: no annotations
