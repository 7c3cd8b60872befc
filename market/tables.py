"""The market's tables: its pools (each one's state as JSON), its ledger of transactions and its tokens."""

from __future__ import annotations

import sqlalchemy as sa

from eventstore.tables import Json, UtcDateTime

metadata = sa.MetaData()

market_pools = sa.Table(
    "market_pools",
    metadata,
    sa.Column("pool_id", sa.String(64), primary_key=True),
    sa.Column("state", Json, nullable=False),  # the pool's struct (domain/pools), tagged by its `kind`
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

market_transactions = sa.Table(
    "market_transactions",
    metadata,
    sa.Column("client_tx_id", sa.String(128), primary_key=True),
    sa.Column("order_id", sa.String(64), index=True),  # NULL for the market's own flow and outside swaps
    sa.Column("status", sa.String(16), nullable=False),  # "pending", "landed" or "dropped"
    sa.Column("transaction", Json, nullable=False),  # the SwapTransaction as sent
    sa.Column("failure", sa.Text),  # the chain error drawn at sending (MOCK_FAILURE_RATE), told at landing
    sa.Column("outcome", Json),  # Landed or Dropped, once decided
    sa.Column("sent_at", UtcDateTime, nullable=False),
    sa.Column("lands_at", UtcDateTime, nullable=False),
    sa.Column("decided_at", UtcDateTime),
)

market_tokens = sa.Table(
    "market_tokens",
    metadata,
    sa.Column("symbol", sa.String(16), primary_key=True),
    sa.Column("decimals", sa.SmallInteger, nullable=False),
    sa.Column("mint_authority", sa.String(64)),  # NULL: renounced
    sa.Column("freeze_authority", sa.String(64)),  # NULL: none
    sa.Column("announced_at", UtcDateTime, nullable=False),
    sa.Column("launched_at", UtcDateTime),  # NULL until its first pool exists
    sa.Column("first_pool", sa.String(64)),
)
