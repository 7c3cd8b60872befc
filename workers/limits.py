"""How many orders may start: a moving window shared by every worker process.

The window is kept in Redis and its clock is Redis's own (`TIME` inside the script), so a grant is stamped
when it is made: a request that was slow to arrive cannot be stamped early and let the next window open
early. (The `limits` package stamps entries with the client's clock before sending them, which lets a
window open a request's latency too soon.)
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid

from redis.asyncio import Redis

from eventstore.cancellation import raise_if_cancelled

KEY = "order-engine:order-starts"
MIN_WAIT_S = 0.005

# Returns 0 when a start is granted, otherwise the milliseconds until the oldest start leaves the window.
TAKE_TURN = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window - now
"""


class RedisStartLimiter:
    def __init__(self, redis: Redis, max_starts: int, window_s: float) -> None:
        self._take_turn = redis.register_script(TAKE_TURN)
        self.max_starts = max_starts
        self.window_ms = max(1, round(window_s * 1000))

    async def wait_for_turn(self) -> None:
        ticket = uuid.uuid4().hex
        while True:
            wait_ms = int(await self._take_turn(keys=[KEY], args=[self.max_starts, self.window_ms, ticket]))
            if wait_ms == 0:
                return
            raise_if_cancelled()
            await asyncio.sleep(max(MIN_WAIT_S, wait_ms / 1000))


class InMemoryStartLimiter:
    """For the embedded default, where this process is the only worker."""

    def __init__(self, max_starts: int, window_s: float) -> None:
        self.max_starts = max_starts
        self.window_s = window_s
        self._starts: collections.deque[float] = collections.deque()

    async def wait_for_turn(self) -> None:
        while True:
            now = time.monotonic()
            while self._starts and self._starts[0] <= now - self.window_s:
                self._starts.popleft()
            if len(self._starts) < self.max_starts:
                self._starts.append(now)
                return
            await asyncio.sleep(max(MIN_WAIT_S, self._starts[0] + self.window_s - now))
