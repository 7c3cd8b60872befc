"""How many orders may start: a moving window shared by every worker process (via Redis when there is one)."""

from __future__ import annotations

import asyncio
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

MIN_WAIT_S = 0.01


class OrderStartLimiter:
    """At most `max_starts` orders started per `window_s`; an order over the limit waits its turn."""

    def __init__(self, storage: Storage, max_starts: int, window_s: float) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        # `limits` counts whole seconds; a fractional window is rounded up, never down.
        self._item = RateLimitItemPerSecond(
            max_starts, max(1, int(-(-window_s // 1))), namespace="order-starts"
        )

    @classmethod
    def in_memory(cls, max_starts: int, window_s: float) -> OrderStartLimiter:
        return cls(MemoryStorage(), max_starts, window_s)

    @classmethod
    def on_redis(cls, redis_url: str, max_starts: int, window_s: float) -> OrderStartLimiter:
        return cls(RedisStorage(f"async+{redis_url}"), max_starts, window_s)

    async def wait_for_turn(self) -> None:
        while not await self._limiter.hit(self._item, "orders"):
            stats = await self._limiter.get_window_stats(self._item, "orders")
            await asyncio.sleep(max(MIN_WAIT_S, stats.reset_time - time.time()))
