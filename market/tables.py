"""The market's tables: its pools (each one's state as JSON) and its ledger of transactions."""

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
