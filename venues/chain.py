"""The port between the engine and the simulated chain (the market), as an RPC node would be.

The engine reads pools from it (one venue at a time, so a venue that fails or is slow is left out of one
routing decision) and routes on its own copies with the pools' maths; it sends one transaction per attempt,
whose legs may swap in several pools. The chain is idempotent on `client_tx_id` (as Solana is on a
transaction's signature): sending the same transaction again returns its first outcome and never swaps twice.
A transaction that has not landed by `expires_at` (its blockhash's last valid block) never lands.

What an adapter raises: `VenueError` when the chain refuses or fails a request (its reason fit to show),
`TimeoutError` when it does not answer in time (see `venues/base.py`). Anything else is a bug of ours.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from domain.pools import PoolState

# How long a transaction may take to land: a Solana blockhash is valid for 150 blocks, about a minute.
TRANSACTION_LIFETIME_S = 60


class SwapLeg(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One pool's part of a transaction: `amount_in_raw` base units of `token_in` into `pool`."""

    venue: str
    pool: str
    amount_in_raw: int


class SwapTransaction(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    client_tx_id: str  # "<orderId>:<attempt>"; the chain deduplicates on it
    order_id: str
    token_in: str
    token_out: str
    legs: tuple[SwapLeg, ...]
    min_amount_out_raw: int  # the chain refuses the whole transaction if the legs pay out less, together
    instructions: tuple[str, ...]
    expires_at: int  # unix seconds; not landed by then, never landed


class LegFill(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    venue: str
    pool: str
    amount_in_raw: int
    amount_out_raw: int
    fee_raw: int


class Landed(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A transaction that swapped: its signature (base58) and what each leg paid out."""

    client_tx_id: str
    order_id: str
    tx_hash: str
    fills: tuple[LegFill, ...]
    amount_out_raw: int  # the sum of the fills
    landed_at: int  # unix milliseconds


class Dropped(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A transaction the chain refused or failed (slippage exceeded, blockhash expired, ...): it swapped
    nothing and never will."""

    client_tx_id: str
    reason: str


class Pending(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Sent and not landed yet."""

    client_tx_id: str


TransactionStatus = Landed | Dropped | Pending


class Chain(Protocol):
    venues: tuple[str, ...]  # the venues whose pools the chain has, e.g. ("raydium", "meteora")

    async def pools(self, venue: str, token_in: str, token_out: str) -> list[PoolState]:
        """The venue's pools for the pair as they are now (either direction), or raise."""
        ...

    async def send_transaction(self, tx: SwapTransaction) -> Landed | Dropped:
        """Send and wait for the outcome; a repeat of a known `client_tx_id` returns its first outcome."""
        ...

    async def transaction_status(self, client_tx_id: str) -> TransactionStatus | None:
        """What became of a transaction; None when the chain never saw it."""
        ...
