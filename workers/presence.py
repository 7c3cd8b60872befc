"""Which worker processes are alive: each one renews a short-lived key while it runs, and removes it when
it stops. A worker whose key has expired is dead (killed): `workers/consumers.py` hands back its orders."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from eventstore.cancellation import raise_if_cancelled

log = logging.getLogger(__name__)

PREFIX = "order-engine:worker"
TTL_S = 6  # how soon a killed worker counts as dead
RENEW_EVERY_S = 2


async def announce(redis: Redis, worker_id: str) -> None:
    await redis.set(f"{PREFIX}:{worker_id}", "alive", ex=TTL_S)


async def announce_forever(redis: Redis, worker_id: str) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY_S)
        try:
            await announce(redis, worker_id)
        except RedisError as error:  # Redis away for a moment: the next renewal may reach it
            log.warning("could not renew this worker's presence: %s", error)
        raise_if_cancelled()


async def withdraw(redis: Redis, worker_id: str) -> None:
    await redis.delete(f"{PREFIX}:{worker_id}")


async def live_workers(redis: Redis) -> list[str]:
    prefix = f"{PREFIX}:"
    return sorted([key.decode().removeprefix(prefix) async for key in redis.scan_iter(match=f"{prefix}*")])
