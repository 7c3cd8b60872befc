"""The workers' Redis queue: its stream and consumer group, and how many orders wait in it (not yet
delivered, plus delivered but not acknowledged)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

QUEUE = "order-engine:orders"
CONSUMER_GROUP = "order-engine-workers"


async def queue_depth(redis: Redis) -> int:
    try:
        groups = await redis.xinfo_groups(QUEUE)
    except ResponseError:  # no queue yet (or Redis was flushed)
        return 0
    for group in groups:
        name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
        if name == CONSUMER_GROUP:
            return int(group.get("lag") or 0) + int(group["pending"])
    return 0
