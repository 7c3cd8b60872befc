"""The queue's consumers: each worker process reads the stream under its own name (its worker id).

A delivery stays pending under the consumer that read it until that consumer acknowledges it. A worker
that stops hands its pending deliveries back at once: their orders are enqueued again and the consumer
leaves the group, so another worker takes them within moments and the queue's figures stay true. A worker
killed outright cannot do that, so the live workers do it for it once its presence key has expired.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from taskiq import AsyncBroker

from commands.queue import Enqueue
from eventstore.cancelling import stop_if_cancelled
from workers.presence import RENEW_EVERY_S, TTL_S, live_workers
from workers.queue import CONSUMER_GROUP, QUEUE

log = logging.getLogger(__name__)

REAPING_PREFIX = "order-engine:reaping"
REAPING_LOCK_S = 30  # one live worker at a time hands a dead one's deliveries back


async def hand_back(
    redis: Redis, broker: AsyncBroker, consumer: str, enqueue: Enqueue, in_hand: Sequence[str] = ()
) -> list[str]:
    """Enqueue again the orders of every delivery pending under `consumer` (and `in_hand`, the orders
    whose deliveries it has just ended), then remove the consumer and its pending entries from the group.
    Returns the orders handed back."""
    pending = await redis.xpending_range(QUEUE, CONSUMER_GROUP, "-", "+", 10_000, consumername=consumer)
    order_ids = list(in_hand)
    for entry in pending:
        for _, fields in await redis.xrange(QUEUE, entry["message_id"], entry["message_id"]):
            order_id = broker.formatter.loads(fields[b"data"]).args[0]
            if order_id not in order_ids:
                order_ids.append(order_id)
    for order_id in order_ids:
        await enqueue(order_id)
    await redis.xgroup_delconsumer(QUEUE, CONSUMER_GROUP, consumer)
    return order_ids


async def reap_dead_consumers(redis: Redis, broker: AsyncBroker, enqueue: Enqueue) -> dict[str, list[str]]:
    """Hand back the deliveries of every consumer whose worker is no longer alive."""
    try:
        consumers = await redis.xinfo_consumers(QUEUE, CONSUMER_GROUP)
    except Exception as error:
        if "no such key" in str(error).lower() or "nogroup" in str(error).lower():
            return {}  # no queue yet, or Redis was flushed
        raise
    alive = set(await live_workers(redis))
    reaped: dict[str, list[str]] = {}
    for consumer in consumers:
        name = consumer["name"].decode() if isinstance(consumer["name"], bytes) else consumer["name"]
        # Quiet for as long as a presence key lives, too: right after a flush a live worker's key is gone
        # for a moment, but it keeps reading the queue.
        gone = name not in alive and int(consumer["idle"]) >= TTL_S * 1000
        if not gone or not await redis.set(f"{REAPING_PREFIX}:{name}", 1, nx=True, ex=REAPING_LOCK_S):
            continue
        reaped[name] = await hand_back(redis, broker, name, enqueue)
        log.info(
            "worker %s is gone: handed back its %d pending orders",
            name,
            len(reaped[name]),
            extra={"worker": name, "order_ids": reaped[name]},
        )
    return reaped


async def reap_forever(redis: Redis, broker: AsyncBroker, enqueue: Enqueue) -> None:
    while True:
        try:
            await reap_dead_consumers(redis, broker, enqueue)
        except Exception as error:
            stop_if_cancelled(error)
            log.warning("could not look for dead workers; trying again", exc_info=True)
        stop_if_cancelled()
        await asyncio.sleep(RENEW_EVERY_S)
