"""The port between the engine and a swap venue (a DEX pool), so the engine never knows which one it talks to.

A venue quotes a pair and executes a signed swap. Execution is idempotent on `client_tx_id`, as a chain is on
a transaction signature: resubmitting the same transaction can never swap twice.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from domain.events import Quote


class SwapTransaction(msgspec.Struct, frozen=True, kw_only=True):
    """A swap ready to send: the chosen quote plus the floor below which the venue must refuse it."""

    client_tx_id: str  # e.g. "<orderId>:<attempt>"; the venue deduplicates on it
    token_in: str
    token_out: str
    amount_in: float
    quoted_price: float  # the selected quote's effective_price
    min_amount_out: float
    instructions: tuple[str, ...]


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    """What the venue reports once the swap has landed."""

    tx_hash: str
    execution_price: float
    amount_out: float


class VenueError(Exception):
    """The venue refused or failed the swap; `reason` is a short sentence fit to show to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Venue(Protocol):
    name: str

    async def quote(self, token_in: str, token_out: str, amount_in: float) -> Quote: ...

    async def execute(self, tx: SwapTransaction) -> Fill:
        """Swap, or raise `VenueError`; the same `client_tx_id` always gets the same outcome."""
        ...
