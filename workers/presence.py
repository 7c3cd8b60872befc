"""Which worker processes are alive: each one renews a short-lived key while it runs."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

PREFIX = "order-engine:worker"
TTL_S = 15
RENEW_EVERY_S = 5


async def announce_forever(redis: Redis, worker_id: str) -> None:
    while True:
        await redis.set(f"{PREFIX}:{worker_id}", "alive", ex=TTL_S)
        await asyncio.sleep(RENEW_EVERY_S)


async def live_workers(redis: Redis) -> list[str]:
    prefix = f"{PREFIX}:"
    return sorted([key.decode().removeprefix(prefix) async for key in redis.scan_iter(match=f"{prefix}*")])
