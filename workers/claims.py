"""Which orders some worker already has in hand: queued for it, or being executed by it.

The recovery sweep enqueues a non-terminal order again only when nobody has it in hand. A claim is a lock
with a lease that its holder keeps renewing; a killed worker's claim runs out by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import LockError

from eventstore.cancelling import stop_if_cancelled
from eventstore.grouped import Grouped

PREFIX = "order-engine:claim"
QUEUED_PREFIX = "order-engine:queued"


class OrderClaims(Protocol):
    async def mark_queued(self, order_id: str) -> None: ...

    def claim(self, order_id: str) -> contextlib.AbstractAsyncContextManager[bool]:
        """Hold the order while the block runs; yields False when someone else holds it."""
        ...

    async def held(self, order_ids: list[str]) -> set[str]:
        """Those of `order_ids` that are queued or claimed."""
        ...


class RedisClaims:
    def __init__(self, redis: Redis, lease_s: float, queued_ttl_s: float) -> None:
        self.redis = redis
        self.lease_s = lease_s
        self.queued_ttl_s = queued_ttl_s
        self._queued = Grouped(self._mark_all_queued)  # orders submitted together share a round trip

    async def mark_queued(self, order_id: str) -> None:
        await self._queued.add(order_id)

    async def _mark_all_queued(self, order_ids: list[str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for order_id in order_ids:
                pipe.set(f"{QUEUED_PREFIX}:{order_id}", 1, ex=max(1, round(self.queued_ttl_s)))
            await pipe.execute()

    @contextlib.asynccontextmanager
    async def claim(self, order_id: str) -> AsyncIterator[bool]:
        lock = self.redis.lock(f"{PREFIX}:{order_id}", timeout=self.lease_s, blocking=False)
        acquired = await lock.acquire()
        # The delivery has reached a worker, so the order no longer waits in the queue, claimed here or
        # not. (The other holder may be this very worker, whose lock was set but whose reply was lost
        # with the connection; the recovery sweep takes the order once that lease runs out.)
        await self.redis.delete(f"{QUEUED_PREFIX}:{order_id}")
        if not acquired:
            yield False
            return
        renewal = asyncio.create_task(self._renew(lock))
        try:
            yield True
        finally:
            renewal.cancel()
            with contextlib.suppress(LockError, asyncio.CancelledError):
                await renewal
            with contextlib.suppress(LockError):  # a lease that ran out is no longer ours to release
                await lock.release()

    async def _renew(self, lock: object) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await lock.reacquire()  # type: ignore[attr-defined]
            stop_if_cancelled()  # or the claim, which awaits this renewal's end, would never be released

    async def held(self, order_ids: list[str]) -> set[str]:
        if not order_ids:
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for order_id in order_ids:
                pipe.exists(f"{PREFIX}:{order_id}", f"{QUEUED_PREFIX}:{order_id}")
            counts = await pipe.execute()
        return {order_id for order_id, count in zip(order_ids, counts, strict=True) if count}


class InMemoryClaims:
    """For the embedded default, where the broker and every worker live in this one process."""

    def __init__(self, queued_ttl_s: float) -> None:
        self.queued_ttl_s = queued_ttl_s
        self._queued: dict[str, float] = {}
        self._claimed: set[str] = set()

    async def mark_queued(self, order_id: str) -> None:
        self._queued[order_id] = time.monotonic() + self.queued_ttl_s

    @contextlib.asynccontextmanager
    async def claim(self, order_id: str) -> AsyncIterator[bool]:
        self._queued.pop(order_id, None)
        if order_id in self._claimed:
            yield False
            return
        self._claimed.add(order_id)
        try:
            yield True
        finally:
            self._claimed.discard(order_id)

    async def held(self, order_ids: list[str]) -> set[str]:
        now = time.monotonic()
        return {o for o in order_ids if o in self._claimed or self._queued.get(o, 0) > now}
