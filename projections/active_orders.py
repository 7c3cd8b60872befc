"""The active-order cache: every order that has not ended, with its status. Finished orders leave it.

In Redis (PostgreSQL/Redis mode) its checkpoint lives in Redis too, written in the same MULTI as the
changes; a flushed Redis therefore loses the checkpoint along with the cache and is rebuilt from the log.
"""

from __future__ import annotations

from typing import Any

from domain.events import OrderSubmitted
from domain.transitions import status_after
from eventstore.base import LogPosition, RecordedEvent
from projections.memory_projection import InMemoryProjection
from projections.redis_projection import RedisProjection, delete_projection

PREFIX = "order-engine:active"
CHECKPOINT_KEY = "order-engine:checkpoint:active-orders"


def _changes(recorded: RecordedEvent) -> dict[str, Any] | None:
    """The cached fields an event sets, or None when the order has ended."""
    status = status_after(recorded.event)
    if status.is_terminal:
        return None
    fields = {
        "status": str(status),
        "version": recorded.version,
        "updatedAt": recorded.recorded_at.isoformat(),
    }
    if isinstance(recorded.event, OrderSubmitted):
        event = recorded.event
        fields |= {
            "tokenIn": event.token_in,
            "tokenOut": event.token_out,
            "amountIn": str(event.amount_in),
            "amountInRaw": str(event.amount_in_raw),
        }
    return fields


def _by_order(batch: list[RecordedEvent]) -> dict[str, dict[str, Any] | None]:
    """What `batch` leaves of each order it touches: the cached fields its events set, merged (each HSET
    adds to the hash), or None when the order ended (its last event: none follows an order's end)."""
    changes: dict[str, dict[str, Any] | None] = {}
    for recorded in batch:
        fields = _changes(recorded)
        changes[recorded.order_id] = (
            None if fields is None else (changes.get(recorded.order_id) or {}) | fields
        )
    return changes


# KEYS (after the checkpoint): the set of active ids, then each changed order's hash. ARGV (after the
# checkpoints): for each order (in KEYS' order) its id, the number n of field and value items to set (0: the
# order ended, its hash goes) and those n items.
_APPLY = """
local at = 3
for key = 3, #KEYS do
    local order_id, items = ARGV[at], tonumber(ARGV[at + 1])
    if items == 0 then
        redis.call('DEL', KEYS[key])
        redis.call('SREM', KEYS[2], order_id)
    else
        redis.call('HSET', KEYS[key], unpack(ARGV, at + 2, at + 1 + items))
        redis.call('SADD', KEYS[2], order_id)
    end
    at = at + 2 + items
end
"""


class RedisActiveOrders(RedisProjection):
    name, checkpoint_key, script = "active-orders", CHECKPOINT_KEY, _APPLY

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        """Apply `batch` and move the checkpoint with it in one script, which Redis runs atomically: one
        round trip, where watching the checkpoint, reading it and a MULTI took three."""
        changes = _by_order(batch)
        args: list[str | int] = []
        for order_id, fields in changes.items():
            pairs = [] if fields is None else [item for pair in fields.items() for item in pair]
            args += [order_id, len(pairs), *pairs]
        return await self._run(
            after, batch, [PREFIX, *(f"{PREFIX}:{order_id}" for order_id in changes)], args
        )

    async def reset(self) -> None:
        """Forget the cache and its checkpoint together: following the log then rebuilds it from the start."""
        await delete_projection(self.redis, PREFIX, lambda order_id: f"{PREFIX}:{order_id}", CHECKPOINT_KEY)

    async def all(self) -> dict[str, dict[str, str]]:
        ids = sorted(member.decode() for member in await self.redis.smembers(PREFIX))
        async with self.redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hgetall(f"{PREFIX}:{order_id}")
            hashes = await pipe.execute()
        return {
            order_id: {k.decode(): v.decode() for k, v in fields.items()}
            for order_id, fields in zip(ids, hashes, strict=True)
            if fields
        }


class InMemoryActiveOrders(InMemoryProjection):
    """For the embedded default: rebuilt from the log each time the process starts."""

    name = "active-orders"

    def __init__(self) -> None:
        super().__init__()
        self._orders: dict[str, dict[str, str]] = {}

    async def _apply_batch(self, batch: list[RecordedEvent]) -> None:
        for recorded in batch:
            fields = _changes(recorded)
            if fields is None:
                self._orders.pop(recorded.order_id, None)
            else:
                cached = self._orders.setdefault(recorded.order_id, {})
                cached.update({k: str(v) for k, v in fields.items()})

    async def all(self) -> dict[str, dict[str, str]]:
        return {order_id: dict(fields) for order_id, fields in sorted(self._orders.items())}
