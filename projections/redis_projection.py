"""What the projections kept in Redis share: their checkpoint is a key holding "transaction id:position",
moved by the same script that writes the projection (Redis runs a script atomically), so the two never
part, and a flushed Redis loses both together (following the log then rebuilds the projection)."""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import WatchError

from eventstore.base import LOG_START, LogPosition, RecordedEvent


class RedisProjection:
    """A projection applied by one Lua script per batch. `script` is the body that applies the batch: it is
    run only while the checkpoint (KEYS[1]) is the one the batch follows (ARGV[1]; none: the log's start),
    and the checkpoint then moves to ARGV[2]. The body reads its own KEYS from 2 and ARGV from 3."""

    name: str
    checkpoint_key: str
    script: str

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._apply = redis.register_script(
            "if (redis.call('GET', KEYS[1]) or '0:0') ~= ARGV[1] then return 0 end\n"
            f"{self.script}\n"
            "redis.call('SET', KEYS[1], ARGV[2])\nreturn 1\n"
        )

    async def position(self) -> LogPosition:
        return await _read_checkpoint(self.redis, self.checkpoint_key)

    async def _run(
        self, after: LogPosition, batch: list[RecordedEvent], keys: list[str], args: list[str | int]
    ) -> bool:
        """Run the script for `batch` with its own `keys` and `args` (after the checkpoint's); False, and
        nothing changed, if the checkpoint is no longer `after`."""
        all_args = [*_checkpoint_args(after, batch), *args]
        return bool(await self._apply(keys=[self.checkpoint_key, *keys], args=all_args))


def _checkpoint_args(after: LogPosition, batch: list[RecordedEvent]) -> list[str]:
    """A projection script's first two arguments: the checkpoint `batch` follows and the one it moves to."""
    return [_as_text(after), _as_text(batch[-1].log_position if batch else after)]


async def _read_checkpoint(redis: Redis, key: str) -> LogPosition:
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
