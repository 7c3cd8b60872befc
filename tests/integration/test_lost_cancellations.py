"""Loops that run until cancelled end when cancelled, even when redis-py loses the cancellation on the way
(eventstore/cancelling.py): on the real Redis, cancelled at each turn of the event loop in turn, so that
some cancellations come as a command is being sent, where they are lost."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from taskiq.api import run_receiver_task

from workers.broker import make_broker
from workers.claims import RedisClaims
from workers.limits import RedisStartLimiter

# A command is sent within the first few turns of the event loop: a cancellation then is lost.
STEPS = 12


async def _cancelled_at_each_step(start: Callable[[], Awaitable[object]], within_s: float) -> list[int]:
    """`start()` cancelled after 0, 1, ... STEPS - 1 turns of the event loop, one after the other; returns
    the turns after which it was still running `within_s` after its cancellation."""
    running = []
    for steps in range(STEPS):
        task = asyncio.ensure_future(start())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        _, still = await asyncio.wait([task], timeout=within_s)
        if still:
            running.append(steps)
            task.cancel()  # once more, to clean up if it can be
    return running


async def test_the_queue_receiver_cancelled_at_any_moment_stops(redis_url):
    """As a worker runs it: taskiq's receiver on the engine's queue broker. taskiq awaits its pending read in
    a cleanup shielded from cancellation, so a read that reads on would keep the worker from ever exiting."""
    broker = make_broker(redis_url, consumer_name="receiver")
    await broker.startup()
    try:
        # The queue is empty: the receiver reads on (a blocking read of a second each) until cancelled.
        running = await _cancelled_at_each_step(
            lambda: run_receiver_task(broker, max_async_tasks=3, propagate_exceptions=False), within_s=4
        )
    finally:
        await broker.shutdown()

    assert running == [], f"receivers cancelled after {running} turns read on"


async def test_a_rate_limit_wait_cancelled_at_any_moment_stops(redis_url):
    redis = Redis.from_url(redis_url)
    limiter = RedisStartLimiter(redis, max_starts=1, window_s=60)
    try:
        await limiter.wait_for_turn()  # the window is full for a minute: every other wait goes on asking
        running = await _cancelled_at_each_step(limiter.wait_for_turn, within_s=2)
    finally:
        await redis.aclose()

    assert running == [], f"waits for a turn cancelled after {running} turns went on"


async def test_a_claim_whose_renewal_is_cancelled_at_any_moment_is_released(redis_url):
    redis = Redis.from_url(redis_url)
    # A lease renewed every 10 ms: the renewal is often mid-command when the claim ends and cancels it.
    claims = RedisClaims(redis, lease_s=0.03, queued_ttl_s=60)

    async def claim_briefly(order_id: str) -> None:
        async with claims.claim(order_id) as claimed:
            assert claimed
            await asyncio.sleep(random.uniform(0.01, 0.05))

    order_ids = [f"order-{n}" for n in range(40)]
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*map(claim_briefly, order_ids))
        held = await claims.held(order_ids)
    finally:
        await redis.aclose()

    assert held == set()
