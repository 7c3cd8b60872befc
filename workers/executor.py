"""One worker process's side of executing orders: its concurrency slots and the per-order claim."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from commands.execute_order import Execution
from workers.claims import OrderClaims

log = logging.getLogger(__name__)

# Redis away for a moment (restarting, a network blip) must not cost a delivery: an order neither claimed
# nor run keeps its queued marker, which hides it from the recovery sweep until the marker expires. So the
# delivery is held and tried again (about a minute in all); running again resumes from the log.
REDIS_AWAY = Retry(ExponentialWithJitterBackoff(base=0.05, cap=2.0), retries=40)


class OrderExecutor:
    def __init__(self, execution: Execution, claims: OrderClaims, concurrency: int) -> None:
        self.execution = execution
        self.claims = claims
        self._slots = asyncio.Semaphore(concurrency)
        self.waiting = 0  # orders delivered to this process, waiting for a free slot

    async def execute(self, order_id: str) -> None:
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        try:
            await REDIS_AWAY.call_with_retry(
                lambda: self._execute_in_slot(order_id), lambda error: _redis_away(order_id, error)
            )
        finally:
            self._slots.release()

    async def _execute_in_slot(self, order_id: str) -> None:
        async with self.claims.claim(order_id) as claimed:
            if not claimed:
                log.info("order %s is already in hand elsewhere; this delivery stops", order_id)
                return
            await self.execution.run(order_id)


async def _redis_away(order_id: str, error: Exception) -> None:
    log.warning("Redis unreachable while executing order %s (%s); holding the delivery", order_id, error)
