"""The market's state in the engine's database (PostgreSQL or SQLite), with SQLAlchemy core.

The market process is the only writer of these tables, so nothing here guards against another: the ledger
holds the state in memory and writes each change through (a landed transaction and the pools it changed in
one database transaction) before it tells anyone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.pools import PoolState
from eventstore.backend import Backend
from eventstore.database import unavailable_as_store_error
from market.ledger import TransactionRecord
from market.tables import market_pools, market_tokens, market_transactions
from venues.chain import Dropped, Landed, SwapTransaction, TokenRecord


def _time(unix_ms: int) -> datetime:
    return datetime.fromtimestamp(unix_ms / 1000, UTC)


def _unix_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


class SqlMarketStore:
    def __init__(self, engine: AsyncEngine, backend: Backend) -> None:
        self.engine = engine
        self.backend = backend
        self.one_statement = backend.one_statement(engine)  # the same pool, for a write of one statement

    @unavailable_as_store_error
    async def load(self) -> tuple[list[PoolState], list[TransactionRecord]]:
        async with self.engine.connect() as conn:
            pool_rows = await conn.execute(sa.select(market_pools.c.state).order_by(market_pools.c.pool_id))
            pools = [msgspec.convert(row.state, PoolState, str_keys=True) for row in pool_rows]
            tx_rows = await conn.execute(
                sa.select(market_transactions)
                .where(
                    sa.or_(
                        market_transactions.c.order_id.is_not(None), market_transactions.c.status == "pending"
                    )
                )
                .order_by(market_transactions.c.sent_at)
            )
            return pools, [_record(row) for row in tx_rows]

    @unavailable_as_store_error
    async def load_tokens(self) -> list[TokenRecord]:
        async with self.engine.connect() as conn:
            token_rows = await conn.execute(sa.select(market_tokens).order_by(market_tokens.c.symbol))
            return [_token(row) for row in token_rows]

    @unavailable_as_store_error
    async def save_tokens(self, records: list[TokenRecord], pools: list[PoolState]) -> None:
        async with self.engine.begin() as conn:
            await self.backend.upsert(conn, market_tokens, [_token_row(record) for record in records])
            if pools:
                await self.backend.upsert(conn, market_pools, [_pool_row(pool) for pool in pools])

    @unavailable_as_store_error
    async def save_pools(self, pools: list[PoolState]) -> None:
        async with self.engine.begin() as conn:
            await self.backend.upsert(conn, market_pools, [_pool_row(pool) for pool in pools])

    @unavailable_as_store_error
    async def record_sent(self, records: list[TransactionRecord]) -> None:
        async with self.one_statement.begin() as conn:
            await self.backend.insert_rows(conn, market_transactions, [_transaction_row(r) for r in records])

    @unavailable_as_store_error
    async def record_outcomes(self, records: list[TransactionRecord], pools: list[PoolState]) -> None:
        # One statement on PostgreSQL: one round trip instead of four (BEGIN, two upserts, COMMIT).
        async with self.one_statement.begin() as conn:
            await self.backend.upsert_at_once(
                conn,
                [
                    (market_transactions, [_transaction_row(record) for record in records]),
                    (market_pools, [_pool_row(pool) for pool in pools]),
                ],
            )

    @unavailable_as_store_error
    async def ping(self) -> None:
        async with self.one_statement.connect() as conn:  # (no ROLLBACK after it to drop prepared statements)
            await conn.execute(_COUNT_POOLS)


# Built once, not for each health check.
_COUNT_POOLS = sa.select(sa.func.count()).select_from(market_pools)


def _pool_row(pool: PoolState) -> dict[str, Any]:
    return {"pool_id": pool.pool_id, "state": msgspec.to_builtins(pool), "updated_at": datetime.now(UTC)}


def _token_row(record: TokenRecord) -> dict[str, Any]:
    return {
        "symbol": record.symbol,
        "decimals": record.decimals,
        "mint_authority": record.mint_authority,
        "freeze_authority": record.freeze_authority,
        "announced_at": _time(record.announced_at),
        "launched_at": None if record.launched_at is None else _time(record.launched_at),
        "first_pool": record.first_pool,
    }


def _token(row: Any) -> TokenRecord:
    return TokenRecord(
        symbol=row.symbol,
        decimals=row.decimals,
        mint_authority=row.mint_authority,
        freeze_authority=row.freeze_authority,
        announced_at=_unix_ms(row.announced_at),
        launched_at=None if row.launched_at is None else _unix_ms(row.launched_at),
        first_pool=row.first_pool,
    )


def _transaction_row(record: TransactionRecord) -> dict[str, Any]:
    tx, outcome = record.transaction, record.outcome
    return {
        "client_tx_id": tx.client_tx_id,
        "order_id": tx.order_id or None,
        "status": "pending" if outcome is None else "landed" if isinstance(outcome, Landed) else "dropped",
        "transaction": msgspec.to_builtins(tx),
        "failure": record.failure,
        "outcome": None if outcome is None else msgspec.to_builtins(outcome),
        "sent_at": _time(record.sent_at),
        "lands_at": _time(record.lands_at),
        "decided_at": None if outcome is None else datetime.now(UTC),
    }


def _record(row: Any) -> TransactionRecord:
    outcome: Landed | Dropped | None = None
    if row.status == "landed":
        outcome = msgspec.convert(row.outcome, Landed)
    elif row.status == "dropped":
        outcome = msgspec.convert(row.outcome, Dropped)
    return TransactionRecord(
        transaction=msgspec.convert(row.transaction, SwapTransaction),
        sent_at=_unix_ms(row.sent_at),
        lands_at=_unix_ms(row.lands_at),
        failure=row.failure,
        outcome=outcome,
    )
