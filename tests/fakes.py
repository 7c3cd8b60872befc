"""Fakes of what the command layer talks to, for tests without servers (as cosmicpython's fake unit of
work): a clock that moves only when slept on, a chain that answers what a test says, a limiter that never
waits. The event store is `eventstore.memory.InMemoryEventStore`, which keeps the SQL stores' contract."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

from domain.pools import CpmmPool, PoolState
from venues.base import VenueError
from venues.chain import Dropped, Landed, LegFill, Pending, SwapTransaction, TokenRecord, TransactionStatus

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


# What a fake chain does when asked: a value to return, or an exception to raise (None: behave).
Outcome = Callable[[], object]


def raises(error: BaseException) -> Outcome:
    def outcome() -> object:
        raise error

    return outcome


def venue_error(reason: str = "venue error: pool busy") -> Outcome:
    return raises(VenueError(reason))


def drops(reason: str = "blockhash expired") -> Outcome:
    """A transaction the chain refuses: it swaps nothing (FakeChain fills in the transaction's id)."""
    return lambda: Dropped(client_tx_id="", reason=reason)


def pending() -> Outcome:
    """A status: sent, not landed yet (FakeChain fills in the transaction's id)."""
    return lambda: Pending(client_tx_id="")


@dataclass(frozen=True)
class _AfterLanding:
    error: BaseException


def lands_then(error: BaseException) -> Outcome:
    """A send whose transaction lands, after which the adapter raises `error` (a bug of ours, say)."""
    return lambda: _AfterLanding(error)


def behave() -> Outcome:
    return lambda: None


def cpmm_pool(venue: str, usdc_per_sol: int, depth_sol: int = 10_000, n: int = 1) -> CpmmPool:
    """A SOL/USDC Raydium-style pool holding `depth_sol` SOL at `usdc_per_sol` (0.25 % fee)."""
    return CpmmPool(
        pool_id=f"{venue}-cpmm-SOL-USDC-{n}",
        venue=venue,
        token_x="SOL",
        token_y="USDC",
        decimals_x=9,
        decimals_y=6,
        reserve_x=depth_sol * 10**9,
        reserve_y=depth_sol * usdc_per_sol * 10**6,
    )


@dataclass
class FakeChain:
    """A chain of the given pools that lands each transaction at once, idempotent on `client_tx_id`, and
    refuses one that would pay less than its minimum. `pools_outcomes[venue]`, `send_outcomes` and
    `status_outcomes` are used up one per call (then it behaves), to make it fail as a test needs: a send
    outcome may drop the transaction (`drops`), a status outcome may answer instead of the ledger
    (`pending`). `answers_lost` sends land but answer with a timeout, as when the connection drops after the
    chain took the transaction; the pools of the venues in `hanging` never answer."""

    pools_by_venue: dict[str, list[CpmmPool]] = field(
        default_factory=lambda: {
            "raydium": [cpmm_pool("raydium", 150)],
            "meteora": [cpmm_pool("meteora", 151)],
        }
    )
    pools_outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    send_outcomes: list[Outcome] = field(default_factory=list)
    status_outcomes: list[Outcome] = field(default_factory=list)
    answers_lost: int = 0
    hanging: set[str] = field(default_factory=set)
    sent: list[str] = field(default_factory=list)  # the client_tx_ids sent, in order
    ledger: dict[str, Landed | Dropped] = field(default_factory=dict)
    token_records: list[TokenRecord] = field(
        default_factory=list
    )  # what `tokens` answers; a test adds launches

    @property
    def venues(self) -> tuple[str, ...]:
        return tuple(self.pools_by_venue)

    async def pools(self, venue: str, token_in: str, token_out: str) -> list[PoolState]:
        await asyncio.sleep(0)  # let racing runners interleave
        if venue in self.hanging:
            await asyncio.Event().wait()
        if outcomes := self.pools_outcomes.get(venue):
            outcomes.pop(0)()
        return [msgspec.structs.replace(pool) for pool in self.pools_by_venue[venue]]

    async def send_transaction(self, tx: SwapTransaction) -> Landed | Dropped:
        await asyncio.sleep(0)
        self.sent.append(tx.client_tx_id)
        if tx.client_tx_id in self.ledger:
            return self.ledger[tx.client_tx_id]
        result = self.send_outcomes.pop(0)() if self.send_outcomes else None
        if isinstance(result, Dropped):
            outcome: Landed | Dropped = msgspec.structs.replace(result, client_tx_id=tx.client_tx_id)
        else:
            outcome = self._land(tx)
        self.ledger[tx.client_tx_id] = outcome
        if isinstance(result, _AfterLanding):
            raise result.error
        if self.answers_lost:
            self.answers_lost -= 1
            raise TimeoutError("the answer was lost")
        return outcome

    async def transaction_status(self, client_tx_id: str) -> TransactionStatus | None:
        await asyncio.sleep(0)
        answer = self.status_outcomes.pop(0)() if self.status_outcomes else None
        if isinstance(answer, Pending):
            return msgspec.structs.replace(answer, client_tx_id=client_tx_id)
        return self.ledger.get(client_tx_id)

    async def tokens(self) -> list[TokenRecord]:
        await asyncio.sleep(0)
        return sorted(self.token_records, key=lambda record: record.symbol)

    def _land(self, tx: SwapTransaction) -> Landed | Dropped:
        by_id = {pool.pool_id: pool for pools in self.pools_by_venue.values() for pool in pools}
        trial = {leg.pool: msgspec.structs.replace(by_id[leg.pool]) for leg in tx.legs}
        fills = []
        for leg in tx.legs:
            result = trial[leg.pool].swap(tx.token_in, leg.amount_in_raw, 0)
            fills.append(
                LegFill(
                    venue=leg.venue,
                    pool=leg.pool,
                    amount_in_raw=leg.amount_in_raw,
                    amount_out_raw=result.amount_out_raw,
                    fee_raw=result.fee_raw,
                )
            )
        amount_out_raw = sum(fill.amount_out_raw for fill in fills)
        if amount_out_raw < tx.min_amount_out_raw:
            reason = f"slippage exceeded: would pay {amount_out_raw} < minimum {tx.min_amount_out_raw}"
            return Dropped(client_tx_id=tx.client_tx_id, reason=reason)
        for venue, pools in self.pools_by_venue.items():
            self.pools_by_venue[venue] = [trial.get(pool.pool_id, pool) for pool in pools]
        return Landed(
            client_tx_id=tx.client_tx_id,
            order_id=tx.order_id,
            tx_hash=f"tx-{tx.client_tx_id}",
            fills=tuple(fills),
            amount_out_raw=amount_out_raw,
            landed_at=0,
        )
