"""The port between the engine and a swap venue (a DEX pool), so the engine never knows which one it talks to.

A venue quotes a pair and executes a signed swap. Execution is idempotent on `client_tx_id`, as a chain is on
a transaction signature: resubmitting the same transaction can never swap twice.

What a venue may raise (`VENUE_FAILURES`): `VenueError` when it refuses or fails a quote or a swap, and
`TimeoutError` when it does not answer in time; both are the venue's failure. In routing such a venue is left
out of that attempt (the attempt fails only when no venue quotes); in execution the attempt fails with the
reason and is retried. Anything else a venue raises is a bug of the engine's side (the adapter is ours): the
run is recorded as crashed, with the traceback in the logs, and the order fails after a few crashed runs.
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


VENUE_FAILURES = (VenueError, TimeoutError)


def failure_reason(error: BaseException) -> str:
    """What a venue failure says to the user."""
    if isinstance(error, VenueError):
        return error.reason
    return "venue did not answer in time"


class Venue(Protocol):
    name: str

    async def quote(self, token_in: str, token_out: str, amount_in: float) -> Quote:
        """The venue's offer, or raise `VenueError` / `TimeoutError`."""
        ...

    async def execute(self, tx: SwapTransaction) -> Fill:
        """Swap, or raise `VenueError` / `TimeoutError`; one `client_tx_id` always gets the same outcome."""
        ...
