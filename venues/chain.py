"""The port between the engine and the simulated chain (the market), as an RPC node would be.

The engine reads pools from it (one venue at a time, so a venue that fails or is slow is left out of one
routing decision) and routes on its own copies with the pools' maths; it sends one transaction per attempt,
whose legs may swap in several pools. The chain is idempotent on `client_tx_id` (as Solana is on a
transaction's signature): sending the same transaction again returns its first outcome and never swaps twice.
A transaction that has not landed by `expires_at` (its blockhash's last valid block) never lands. The chain
also lists its tokens (`tokens`): the ones it started with and the ones launched since, each with its
authorities and, once it has one, its first pool (what a sniper waits for).

What an adapter raises: `VenueError` when the chain refuses or fails a request (its reason fit to show),
`TimeoutError` when it does not answer in time (see `venues/base.py`). Anything else is a bug of ours.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import msgspec

from domain.pools import PoolState
from domain.tokens import Launch

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


class TokenRecord(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A token the chain knows: announced (its mint exists), and tradable once it has a pool.

    `mint_authority`: the base58 address that may still mint more of it, None once renounced;
    `freeze_authority`: the address that may freeze holders' accounts, None when there is none (sniper bots
    refuse tokens with either). Times in unix milliseconds; `launched_at` and `first_pool` stay None until
    the token's first pool is created (the chain's starting tokens were launched when it started)."""

    symbol: str
    decimals: int
    mint_authority: str | None
    freeze_authority: str | None
    announced_at: int
    launched_at: int | None = None
    first_pool: str | None = None

    @property
    def tradable(self) -> bool:
        return self.first_pool is not None


def as_launch(record: TokenRecord) -> Launch:
    """The record as the domain's sniper orders judge a token."""
    launched_at = (
        None if record.launched_at is None else datetime.fromtimestamp(record.launched_at / 1000, UTC)
    )
    return Launch(
        symbol=record.symbol,
        decimals=record.decimals,
        mint_authority=record.mint_authority,
        freeze_authority=record.freeze_authority,
        launched_at=launched_at,
    )


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

    async def tokens(self) -> list[TokenRecord]:
        """Every token the chain knows, launched or only announced, by symbol (one read)."""
        ...
