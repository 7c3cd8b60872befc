"""The pools' wire JSON (venues/chain_wire.py's), encoded once for each state of each pool."""

from __future__ import annotations

from domain.pools import PoolState
from venues.chain_wire import pool_wire_json


class PoolsJson:
    """Each pool's JSON, kept until the pool changes. The ledger replaces a pool that changes and never
    changes one in place, so a pool that is the same object as the one encoded is unchanged: the check is
    one identity comparison. (Encoding the pools of every read, a DLMM pool's bins and all, took a fifth of
    the market's CPU under load.)"""

    def __init__(self) -> None:
        self._encoded: dict[str, tuple[PoolState, bytes]] = {}  # pool id -> the pool encoded, its JSON

    def of(self, pool: PoolState) -> bytes:
        """`pool` as a JSON object."""
        encoded = self._encoded.get(pool.pool_id)
        if encoded is None or encoded[0] is not pool:
            encoded = self._encoded[pool.pool_id] = (pool, pool_wire_json(pool))
        return encoded[1]

    def list_of(self, pools: list[PoolState]) -> bytes:
        """`pools` as a JSON array, in their order."""
        return b"[" + b",".join(self.of(pool) for pool in pools) + b"]"
