"""The relay: the log is the outbox. A follower of the log with a checkpoint of its own, run by every worker
process (`engine/services.py`), hands each market order submitted to it to the workers' queue, so that a POST
only appends and answers.

Each batch of the log is handed over together with the relay's checkpoint: in Redis, one script queues the
batch's orders and moves the checkpoint, atomically, so that of several workers exactly one queues each
order; in the embedded default, the queue and the checkpoint live and die with the process. An order is
never lost between its append and the queue: until the checkpoint has moved past it, the relay hands it
over again (a failed round, a worker stopped midway), and a worker that gets an order twice finds it
claimed or ended (`workers/executor.py`).

An order the relay reaches long after it was submitted (`HORIZON_S`: no worker ran meanwhile, or a
flushed Redis took the queue and the checkpoint together and the relay starts again from the log's start)
is left to the recovery sweep (`workers/recovery.py`), which queues it only if it has not ended: the
relay does not queue the whole history again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from domain.events import OrderSubmitted
from domain.order_type import OrderType
from eventstore.base import LogPosition, RecordedEvent
from projections.memory_projection import InMemoryProjection
from projections.redis_projection import RedisProjection
from workers.claims import QUEUED_PREFIX
from workers.queue import QUEUE

NAME = "order-queue"
CHECKPOINT_KEY = "order-engine:checkpoint:order-queue"
# Far above the relay's lag in operation (a round: milliseconds), far below a log's history.
HORIZON_S = 600.0

# KEYS: the checkpoint, the queue's stream, then each order's queued marker; ARGV: the checkpoint moves,
# the markers' time to live (s), then each order's queue entry, in the markers' order.
_QUEUE_ALL = """
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], 1, 'EX', ARGV[3])
  redis.call('XADD', KEYS[2], '*', 'data', ARGV[i + 1])
end
"""


def orders_to_queue(batch: list[RecordedEvent], now: datetime) -> list[str]:
    """The market orders submitted in `batch` within `HORIZON_S` of `now`, in log order. Limit and sniper
    orders wait for their trigger (`workers/triggers.py` queues them when it fires)."""
    since = now - timedelta(seconds=HORIZON_S)
    return [
        recorded.order_id
        for recorded in batch
        if isinstance(recorded.event, OrderSubmitted)
        and recorded.event.order_type is OrderType.MARKET
        and recorded.recorded_at >= since
    ]


class RedisOrderRelay(RedisProjection):
    """`queue_entry(order_id)` is the queue entry that has a worker execute the order
    (`workers.broker.queue_entry`); a queued order's marker lasts `queued_ttl_s` (`workers/claims.py`)."""

    name, checkpoint_key, script = NAME, CHECKPOINT_KEY, _QUEUE_ALL

    def __init__(self, redis: Redis, queue_entry: Callable[[str], bytes], queued_ttl_s: float) -> None:
        super().__init__(redis)
        self.queue_entry = queue_entry
        self.queued_ttl_s = queued_ttl_s

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        """Queue the batch's market orders and move the checkpoint past it, in one script; False, and
        nothing queued, when the checkpoint is no longer `after` (another worker's relay queued them)."""
        order_ids = orders_to_queue(batch, datetime.now(UTC))
        markers = [f"{QUEUED_PREFIX}:{order_id}" for order_id in order_ids]
        entries = [self.queue_entry(order_id) for order_id in order_ids]
        ttl_s = max(1, round(self.queued_ttl_s))
        return await self._run(after, batch, [QUEUE, *markers], [ttl_s, *entries])


class InMemoryOrderRelay(InMemoryProjection):
    """For the embedded default, whose queue ends with its process: the relay starts at the log's start each
    time the process does (what was queued before is the recovery sweep's), through `enqueue`."""

    name = NAME

    def __init__(self, enqueue: Callable[[str], Awaitable[None]]) -> None:
        super().__init__()
        self.enqueue = enqueue

    async def _apply_batch(self, batch: list[RecordedEvent]) -> None:
        for order_id in orders_to_queue(batch, datetime.now(UTC)):
            await self.enqueue(order_id)
