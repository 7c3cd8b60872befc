"""Fakes of what the command layer talks to, for tests without servers (as cosmicpython's fake unit of
work): a clock that moves only when slept on, venues that answer what a test says, a limiter that never
waits. The event store is `eventstore.memory.InMemoryEventStore`, which keeps the SQL stores' contract."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from domain.events import Quote
from domain.routing import quote_for
from venues.base import Fill, SwapTransaction, VenueError

START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeClock:
    """Sleeping moves the time on at once; `sleeps` lists every wait asked for, in seconds."""

    moment: datetime = START
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.moment

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.moment += timedelta(seconds=seconds)
        await asyncio.sleep(0)  # still a point where other tasks run


class NoLimit:
    def __init__(self) -> None:
        self.turns = 0

    async def wait_for_turn(self) -> None:
        self.turns += 1


# What a fake venue does when asked: a value to return, or an exception to raise.
Outcome = Callable[[], object]


def raises(error: BaseException) -> Outcome:
    def outcome() -> object:
        raise error

    return outcome


@dataclass
class FakeVenue:
    """Quotes `price` with `fee_bps`, fills at the quoted price; `quote_outcomes` / `execute_outcomes` are
    used up one per call (then it behaves), to make it fail as a test needs. Deduplicates `client_tx_id`."""

    name: str
    price: float = 150.0
    fee_bps: int = 25
    quote_outcomes: list[Outcome] = field(default_factory=list)
    execute_outcomes: list[Outcome] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)  # the client_tx_ids sent, in order
    fills: dict[str, Fill] = field(default_factory=dict)

    async def quote(self, token_in: str, token_out: str, amount_in: float) -> Quote:
        await asyncio.sleep(0)  # let racing runners interleave
        if self.quote_outcomes:
            self.quote_outcomes.pop(0)()
        return quote_for(self.name, self.price, self.fee_bps, 0.0, amount_in)

    async def execute(self, tx: SwapTransaction) -> Fill:
        await asyncio.sleep(0)
        self.executed.append(tx.client_tx_id)
        if tx.client_tx_id in self.fills:
            return self.fills[tx.client_tx_id]
        if self.execute_outcomes:
            self.execute_outcomes.pop(0)()
        fill = Fill(
            tx_hash=f"{self.name}-{tx.client_tx_id}",
            execution_price=tx.quoted_price,
            amount_out=tx.amount_in * tx.quoted_price,
        )
        self.fills[tx.client_tx_id] = fill
        return fill


def venue_error(reason: str = "venue error: pool busy") -> Outcome:
    return raises(VenueError(reason))
