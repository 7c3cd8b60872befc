"""The checkpoint of a projection kept in Redis: a key holding "transaction id:position", moved by the same
script that writes the projection (Redis runs a script atomically), so the two never part, and a flushed
Redis loses both together (following the log then rebuilds the projection from the start)."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import WatchError

from eventstore.base import LOG_START, LogPosition, RecordedEvent


def checkpoint_args(after: LogPosition, batch: list[RecordedEvent]) -> list[str]:
    """A projection script's first two arguments: the checkpoint `batch` follows and the one it moves to."""
    return [_as_text(after), _as_text(batch[-1].log_position if batch else after)]


async def read_checkpoint(redis: Redis, key: str) -> LogPosition:
    """The checkpoint stored at `key`; the log's start when there is none."""
    raw = await redis.get(key)
    if raw is None:
        return LOG_START
    transaction_id, position = raw.decode().split(":")
    return LogPosition(int(transaction_id), int(position))


async def delete_projection(
    redis: Redis, members_key: str, member_key: Callable[[str], str], *keys: str
) -> None:
    """Delete a projection at once: `keys` (its checkpoint among them), the set `members_key` and the key
    `member_key(member)` of each of its members, in one transaction, retried while a projector changes it."""
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(members_key, *keys)
                members = [member_key(member.decode()) for member in await pipe.smembers(members_key)]
                pipe.multi()
                pipe.delete(members_key, *keys, *members)
                await pipe.execute()
                return
            except WatchError:
                continue


def _as_text(position: LogPosition) -> str:
    return f"{position.transaction_id}:{position.position}"
