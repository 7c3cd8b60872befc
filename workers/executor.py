"""One worker process's side of executing orders: its concurrency slots and the per-order claim."""

from __future__ import annotations

import asyncio
import logging

from commands.execute_order import Execution
from workers.claims import OrderClaims

log = logging.getLogger(__name__)


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
            await self._execute_in_slot(order_id)
        finally:
            self._slots.release()

    async def _execute_in_slot(self, order_id: str) -> None:
        async with self.claims.claim(order_id) as claimed:
            if not claimed:
                log.info("order %s is already in hand elsewhere; this delivery stops", order_id)
                return
            await self.execution.run(order_id)
