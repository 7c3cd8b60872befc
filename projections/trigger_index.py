"""The trigger index: every armed order by pair and limit price, and by expiry; a projection of the log.

The trigger stage asks it which orders a price can have crossed (`crossed`: a pair's orders whose limit price
is at most the pools' best spot price, since no route pays more than that; a sniper order waits under its
pair with a limit of 0, which the pair's first pool reaches) and which are due to expire
(`due`), instead of polling orders one by one. An order leaves it when it fires, is cancelled or expires.
What it answers is a set of candidates, never a decision: the trigger stage checks each against the log.

Each order is indexed as it is armed (`TriggerArmed`), under the pair its `OrderSubmitted` named (always
earlier in the log, so already applied). In Redis: a sorted set of order ids by limit price per pair, one by
expiry, a hash of each armed order's pair and the set of pairs with armed orders, changed together with the
checkpoint by one script (as the active-order cache is); a flushed Redis loses the checkpoint with the index,
which is then rebuilt from the log. In memory (the embedded default): rebuilt from the log at each start.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from domain.events import OrderCancelled, OrderExpired, OrderSubmitted, TriggerArmed, TriggerFired
from eventstore.base import LogPosition, RecordedEvent
from projections.memory_projection import InMemoryProjection
from projections.redis_projection import RedisProjection, delete_projection

PREFIX = "order-engine:triggers"
CHECKPOINT_KEY = "order-engine:checkpoint:trigger-index"
PAIRS_KEY, ARMED_KEY, EXPIRY_KEY = f"{PREFIX}:pairs", f"{PREFIX}:armed", f"{PREFIX}:expiry"
LIMITS = f"{PREFIX}:limit:"  # + "IN>OUT": the sorted set of a pair's armed orders by limit price
# Scores are doubles: a price is looked up this much above itself, so that rounding never hides an order
# whose limit the price has reached (the trigger stage then checks each candidate exactly).
SCORE_MARGIN = Decimal("1e-9")
ENDED = (TriggerFired, OrderCancelled, OrderExpired)

Pair = tuple[str, str]  # (token_in, token_out): a limit order sells token_in for token_out


class TriggerIndex(Protocol):
    name: str

    async def position(self) -> LogPosition: ...

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool: ...

    async def armed_pairs(self) -> set[Pair]:
        """The pairs with armed orders."""
        ...

    async def crossed(self, pair: Pair, spot_price: Decimal) -> list[str]:
        """The armed orders of `pair` whose limit price is at most `spot_price` (whole token_out per whole
        token_in), and perhaps a few just above it."""
        ...

    async def due(self, now: datetime) -> list[str]:
        """The armed orders whose expiry is `now` or earlier."""
        ...

    async def count(self) -> int:
        """How many orders are armed."""
        ...


def _operations(batch: list[RecordedEvent]) -> list[tuple[str, ...]]:
    """What `batch` does to the index, in log order: ("pair", id, pair) when a limit order is submitted,
    ("arm", id, price score, expiry score or "") when it is armed, ("end", id) when it stops waiting."""
    operations: list[tuple[str, ...]] = []
    for recorded in batch:
        event, order_id = recorded.event, recorded.order_id
        if isinstance(event, OrderSubmitted) and event.order_type.is_triggered:
            operations.append(("pair", order_id, f"{event.token_in}>{event.token_out}"))
        elif isinstance(event, TriggerArmed):
            expiry = "" if event.expires_at is None else repr(event.expires_at.timestamp())
            # A sniper order has no limit: any price of its pair (once the pair has a pool) reaches it.
            score = 0.0 if event.limit_price is None else float(event.limit_price)
            operations.append(("arm", order_id, repr(score), expiry))
        elif isinstance(event, ENDED):
            operations.append(("end", order_id))
    return operations


def _pair(text: str) -> Pair:
    token_in, token_out = text.split(">")
    return token_in, token_out


def _bound(spot_price: Decimal) -> float:
    return float(spot_price * (1 + SCORE_MARGIN))


# KEYS (after the checkpoint): pairs, armed, expiry. ARGV (after the checkpoints): the prefix of the per-pair
# sets, then the operations, each as its kind and its arguments (see `_operations`).
_APPLY = """
local by_pair = ARGV[3]
local at = 4
while at <= #ARGV do
    local kind, order_id = ARGV[at], ARGV[at + 1]
    if kind == 'pair' then
        redis.call('HSET', KEYS[3], order_id, ARGV[at + 2])
        at = at + 3
    elseif kind == 'arm' then
        local pair = redis.call('HGET', KEYS[3], order_id)
        if pair then
            redis.call('ZADD', by_pair .. pair, ARGV[at + 2], order_id)
            redis.call('SADD', KEYS[2], pair)
            if ARGV[at + 3] ~= '' then redis.call('ZADD', KEYS[4], ARGV[at + 3], order_id) end
        end
        at = at + 4
    else
        local pair = redis.call('HGET', KEYS[3], order_id)
        if pair then
            redis.call('ZREM', by_pair .. pair, order_id)
            if redis.call('ZCARD', by_pair .. pair) == 0 then redis.call('SREM', KEYS[2], pair) end
            redis.call('HDEL', KEYS[3], order_id)
        end
        redis.call('ZREM', KEYS[4], order_id)
        at = at + 2
    end
end
"""


class RedisTriggerIndex(RedisProjection):
    name, checkpoint_key, script = "trigger-index", CHECKPOINT_KEY, _APPLY

    async def apply(self, after: LogPosition, batch: list[RecordedEvent]) -> bool:
        """Apply `batch` and move the checkpoint with it, atomically (one script); False if the checkpoint
        is no longer `after`."""
        args: list[str | int] = [LIMITS]
        for operation in _operations(batch):
            args += operation
        return await self._run(after, batch, [PAIRS_KEY, ARMED_KEY, EXPIRY_KEY], args)

    async def reset(self) -> None:
        """Forget the index and its checkpoint together: following the log then rebuilds it."""
        await delete_projection(
            self.redis, PAIRS_KEY, lambda pair: f"{LIMITS}{pair}", CHECKPOINT_KEY, ARMED_KEY, EXPIRY_KEY
        )

    async def armed_pairs(self) -> set[Pair]:
        return {_pair(member.decode()) for member in await self.redis.smembers(PAIRS_KEY)}

    async def crossed(self, pair: Pair, spot_price: Decimal) -> list[str]:
        key = f"{LIMITS}{pair[0]}>{pair[1]}"
        return [member.decode() for member in await self.redis.zrangebyscore(key, "-inf", _bound(spot_price))]

    async def due(self, now: datetime) -> list[str]:
        members = await self.redis.zrangebyscore(EXPIRY_KEY, "-inf", now.timestamp())
        return [member.decode() for member in members]

    async def count(self) -> int:
        return int(await self.redis.hlen(ARMED_KEY))


class InMemoryTriggerIndex(InMemoryProjection):
    """For the embedded default: the same index in this process, rebuilt from the log at each start."""

    name = "trigger-index"

    def __init__(self) -> None:
        super().__init__()
        self._pair_of: dict[str, Pair] = {}
        self._by_pair: dict[Pair, list[tuple[float, str]]] = {}  # sorted by (price score, id)
        self._expiry: dict[str, float] = {}
        self._score: dict[str, float] = {}

    async def _apply_batch(self, batch: list[RecordedEvent]) -> None:
        for kind, order_id, *rest in _operations(batch):
            if kind == "pair":
                self._pair_of[order_id] = _pair(rest[0])
            elif kind == "arm" and order_id in self._pair_of:
                score, expiry = float(rest[0]), rest[1]
                bisect.insort(self._by_pair.setdefault(self._pair_of[order_id], []), (score, order_id))
                self._score[order_id] = score
                if expiry:
                    self._expiry[order_id] = float(expiry)
            elif kind == "end":
                self._forget(order_id)

    def _forget(self, order_id: str) -> None:
        pair, score = self._pair_of.pop(order_id, None), self._score.pop(order_id, None)
        self._expiry.pop(order_id, None)
        if pair is None or score is None:
            return
        armed = self._by_pair[pair]
        armed.remove((score, order_id))
        if not armed:
            del self._by_pair[pair]

    async def armed_pairs(self) -> set[Pair]:
        return set(self._by_pair)

    async def crossed(self, pair: Pair, spot_price: Decimal) -> list[str]:
        armed = self._by_pair.get(pair, [])
        end = bisect.bisect_right(armed, (_bound(spot_price), "\uffff"))
        return [order_id for _, order_id in armed[:end]]

    async def due(self, now: datetime) -> list[str]:
        moment = now.timestamp()
        return [order_id for order_id, expiry in self._expiry.items() if expiry <= moment]

    async def count(self) -> int:
        return len(self._score)
