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
STOP_TIMEOUT_S = 5.0


class OrderExecutor:
    def __init__(self, execution: Execution, claims: OrderClaims, concurrency: int) -> None:
        self.execution = execution
        self.claims = claims
        self._slots = asyncio.Semaphore(concurrency)
        self.waiting = 0  # orders delivered to this process, waiting for a free slot
        self._deliveries: dict[asyncio.Task[object], str] = {}  # the deliveries running, and their orders
        self._running: set[asyncio.Task[object]] = set()  # those of them in a slot
        self.refused: list[str] = []  # orders delivered after `stop` began, to be handed back
        self._stopping = False

    async def execute(self, order_id: str) -> None:
        if self._stopping:
            self.refused.append(order_id)  # this worker is stopping: the order is handed back (`stop`)
            return
        delivery = asyncio.current_task()
        if delivery is None:  # `assert` would vanish under `python -O`
            raise RuntimeError("an order is executed inside a task of the worker's event loop")
        self._deliveries[delivery] = order_id
        try:
            await self._execute(order_id, delivery)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cancelled by `stop`: the claim is released, the order waits for the next worker; the delivery
            # itself ends normally, so the task runner acknowledges it and reports no error.
            delivery.uncancel()
            log.debug("order %s stopped with this worker; handed back", order_id)
        finally:
            del self._deliveries[delivery]

    async def _execute(self, order_id: str, delivery: asyncio.Task[object]) -> None:
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self._running.add(delivery)
        try:
            if self._stopping:
                return  # stopping began while it waited for the slot: handed back untouched
            await REDIS_AWAY.call_with_retry(
                lambda: self._execute_in_slot(order_id), lambda error: _redis_away(order_id, error)
            )
        finally:
            self._running.discard(delivery)
            self._slots.release()

    async def _execute_in_slot(self, order_id: str) -> None:
        async with self.claims.claim(order_id) as claimed:
            if not claimed:
                log.info("order %s is already in hand elsewhere; this delivery stops", order_id)
                return
            await self.execution.run(order_id)

    async def stop(self, grace_s: float = 0.0) -> list[str]:
        """Stop the orders in hand and release their claims, so that another worker resumes each from the
        log at once (no wait for the lease to expire); returns them, for the caller to hand back to the
        queue. An order running in a slot has up to `grace_s` seconds to reach its next event (the run
        ends there); one still waiting for a slot, or still running after that, is stopped where it is."""
        self._stopping = True
        self.execution.stopping.set()
        deliveries = dict(self._deliveries)
        for delivery in deliveries.keys() - self._running:
            delivery.cancel()
        if deliveries:
            _, lingering = await asyncio.wait(deliveries, timeout=grace_s)
            for delivery in lingering:
                delivery.cancel()
            if lingering:
                if grace_s > 0:  # with no grace asked for, none is missed
                    log.warning(
                        "%d orders did not reach their next event within %.0f s", len(lingering), grace_s
                    )
                _, lingering = await asyncio.wait(lingering, timeout=STOP_TIMEOUT_S)
            if lingering:
                log.warning("%d orders did not stop within %.0f s", len(lingering), STOP_TIMEOUT_S)
        return list(dict.fromkeys([*deliveries.values(), *self.refused]))


async def _redis_away(order_id: str, error: Exception) -> None:
    log.warning("Redis unreachable while executing order %s (%s); holding the delivery", order_id, error)
