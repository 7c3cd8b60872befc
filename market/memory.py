"""The market's state in memory, for unit tests: the same promises as the database's, nothing kept."""

from __future__ import annotations

import copy

from domain.pools import PoolState
from market.ledger import TransactionRecord
from venues.chain import TokenRecord


class InMemoryMarketStore:
    def __init__(self) -> None:
        self.pools: dict[str, PoolState] = {}
        self.transactions: dict[str, TransactionRecord] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self.writes = 0  # how many writes reached the store (a refused transaction makes one, of itself)

    async def load(self) -> tuple[list[PoolState], list[TransactionRecord]]:
        records = [
            record
            for record in self.transactions.values()
            if record.transaction.order_id or record.outcome is None
        ]
        return [copy.deepcopy(pool) for pool in self.pools.values()], records

    async def load_tokens(self) -> list[TokenRecord]:
        return [self.tokens[symbol] for symbol in sorted(self.tokens)]

    async def save_tokens(self, records: list[TokenRecord], pools: list[PoolState]) -> None:
        self.tokens.update((record.symbol, record) for record in records)
        await self.save_pools(pools)

    async def save_pools(self, pools: list[PoolState]) -> None:
        self.pools.update((pool.pool_id, copy.deepcopy(pool)) for pool in pools)

    async def record_sent(self, records: list[TransactionRecord]) -> None:
        for record in records:
            self.transactions[record.transaction.client_tx_id] = record
        self.writes += 1

    async def record_outcomes(self, records: list[TransactionRecord], pools: list[PoolState]) -> None:
        for record in records:
            self.transactions[record.transaction.client_tx_id] = record
        await self.save_pools(pools)
        self.writes += 1

    async def ping(self) -> None:
        return None
