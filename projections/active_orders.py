"""The active-order cache: every order that has not ended, with its status. Finished orders leave it.

In Redis (PostgreSQL/Redis mode) its checkpoint lives in Redis too, written in the same MULTI as the
changes; a flushed Redis therefore loses the checkpoint along with the cache and is rebuilt from the log.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import WatchError

from domain.events import OrderSubmitted
from domain.transitions import status_after
from eventstore.base import LOG_START, LogPosition, RecordedEvent

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


class RedisActiveOrders:
    name = "active-orders"

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def position(self) -> LogPosition:
        raw = await self.redis.get(CHECKPOINT_KEY)
        if raw is None:
            return LOG_START
        transaction_id, position = raw.decode().split(":")
        return LogPosition(int(transaction_id), int(position))

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(CHECKPOINT_KEY)
                if await self.position() != after:
                    return False
                pipe.multi()
                for recorded in batch:
                    key = f"{PREFIX}:{recorded.order_id}"
                    fields = _changes(recorded)
                    if fields is None:
                        pipe.delete(key)
                        pipe.srem(PREFIX, recorded.order_id)
                    else:
                        pipe.hset(key, mapping=fields)
                        pipe.sadd(PREFIX, recorded.order_id)
                last = batch[-1].log_position
                pipe.set(CHECKPOINT_KEY, f"{last.transaction_id}:{last.position}")
                await pipe.execute()
            except WatchError:
                return False
        return True

    async def reset(self) -> None:
        """Forget the cache and its checkpoint together: following the log then rebuilds it from the start."""
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(PREFIX, CHECKPOINT_KEY)
                    keys = [f"{PREFIX}:{member.decode()}" for member in await pipe.smembers(PREFIX)]
                    pipe.multi()
                    pipe.delete(PREFIX, CHECKPOINT_KEY, *keys)
                    await pipe.execute()
                    return
                except WatchError:
                    continue

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


class InMemoryActiveOrders:
    """For the embedded default: rebuilt from the log each time the process starts."""

    name = "active-orders"

    def __init__(self) -> None:
        self._orders: dict[str, dict[str, str]] = {}
        self._position = LOG_START

    async def position(self) -> LogPosition:
        return self._position

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        if after != self._position:
            return False
        for recorded in batch:
            fields = _changes(recorded)
            if fields is None:
                self._orders.pop(recorded.order_id, None)
            else:
                cached = self._orders.setdefault(recorded.order_id, {})
                cached.update({k: str(v) for k, v in fields.items()})
        self._position = batch[-1].log_position
        return True

    async def all(self) -> dict[str, dict[str, str]]:
        return {order_id: dict(fields) for order_id, fields in sorted(self._orders.items())}
