"""How many orders wait in the Redis queue: not yet delivered, plus delivered but not acknowledged."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from workers.broker import CONSUMER_GROUP, QUEUE


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
