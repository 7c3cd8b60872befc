"""The chain's ledger: transactions land after a delay, each one all or nothing, each `client_tx_id` once.

A transaction is recorded (pending) when first sent, with the moment it lands (after
MOCK_EXECUTION_DELAY_MS_MIN..MAX, drawn from a seeded generator) and whether the chain will fail it
(MOCK_FAILURE_RATE). When it lands, its legs swap in the pools as they are then, together: if they pay out
less than `min_amount_out_raw` in all, or the transaction is past `expires_at`, it is dropped and nothing
changes. Its outcome and the pools it changed are written in one database transaction before anyone is told.
Sending a known `client_tx_id` again returns the first outcome (waiting for it while in flight), as Solana
answers a signature it has seen.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import msgspec

from domain.amounts import shown
from domain.pools import PoolState
from domain.pools.base import InsufficientLiquidity
from eventstore.base import StoreUnavailable
from eventstore.grouped import Grouped
from market.signatures import base58
from venues.chain import (
    Dropped,
    Landed,
    LegFill,
    Pending,
    SwapLeg,
    SwapTransaction,
    TokenRecord,
    TransactionStatus,
)

log = logging.getLogger(__name__)

# What else goes wrong on a chain, drawn with MOCK_FAILURE_RATE: none of them swaps anything.
CHAIN_ERRORS = (
    "blockhash expired",
    "RPC node timed out",
    "transaction simulation failed: account in use",
)
EXPIRED = "blockhash expired"
STORE_RETRY_S = 1.0  # a landing whose write failed (database away) is tried again after this
OUTSIDE_EXPIRY_S = 60  # an outside trader's swap (POST /swaps, the flow) lands at once; this is ample


class InvalidTransaction(ValueError):
    """A transaction the chain cannot even consider (an unknown pool, a pool without the pair, an amount
    not above 0): refused at sending, before anything is recorded. The message says which leg and why."""


class UnknownPool(InvalidTransaction):
    """A transaction or a swap names a pool the chain does not have."""


class TransactionRecord(msgspec.Struct, kw_only=True):
    """What the ledger knows of one transaction. Times in unix milliseconds."""

    transaction: SwapTransaction
    sent_at: int
    lands_at: int
    failure: str | None  # the chain error it will be dropped with, drawn at sending
    outcome: Landed | Dropped | None = None  # None while pending

    @property
    def status(self) -> TransactionStatus:
        return self.outcome or Pending(client_tx_id=self.transaction.client_tx_id)


class MarketStore(Protocol):
    """Where the market keeps its state (the engine's database: market/store.py; memory: market/memory.py).
    Methods raise what the database raises when it cannot be reached."""

    async def load(self) -> tuple[list[PoolState], list[TransactionRecord]]:
        """Every pool, and every transaction of an order or still pending (the outside swaps of the flow and
        of POST /swaps, decided at once, are not read back)."""
        ...

    async def save_pools(self, pools: list[PoolState]) -> None:
        """Write `pools` (insert or replace)."""
        ...

    async def load_tokens(self) -> list[TokenRecord]:
        """Every token record, by symbol."""
        ...

    async def save_tokens(self, records: list[TokenRecord], pools: list[PoolState]) -> None:
        """Write token records and new pools (insert or replace), in one database transaction."""
        ...

    async def record_sent(self, records: list[TransactionRecord]) -> None:
        """Pending transactions, in one database transaction."""
        ...

    async def record_outcomes(self, records: list[TransactionRecord], pools: list[PoolState]) -> None:
        """Decided transactions and the pools their landings left, in one database transaction."""
        ...

    async def ping(self) -> None:
        """Raise what the database raises when it cannot be reached."""
        ...


@dataclass(frozen=True)
class LedgerConfig:
    execution_delay_ms_min: int = 2000
    execution_delay_ms_max: int = 3000
    failure_rate: float = 0.0
    seed: int | None = None


class Ledger:
    """The pools and the transactions of the chain, in memory, written through to `store`.

    `now` gives unix seconds (a float); tests may pass their own clock. `start` must be awaited before use.
    """

    def __init__(
        self, store: MarketStore, config: LedgerConfig, now: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.config = config
        self.now = now
        seeded = config.seed is not None
        # Delays and failures are drawn at sending, from their own stream, so what a seeded run's
        # transactions meet does not depend on the order their landings happen to run in.
        self._rng = random.Random(f"{config.seed}:ledger") if seeded else random.Random()
        # Signatures are stable per transaction in a seeded run, unguessable across unseeded ones.
        self._signature_salt = f"{config.seed}" if seeded else f"{random.Random().getrandbits(128)}"
        # Pool id -> its state, changed by replacing a pool, never in place (see pools_matching).
        self.pools: dict[str, PoolState] = {}
        self._records: dict[str, TransactionRecord] = {}
        self._outcomes: dict[str, asyncio.Future[Landed | Dropped]] = {}
        self._landings: set[asyncio.Task[None]] = set()
        # Sends and landings each written together with those that come meanwhile, in one database
        # transaction: one each was a fifth of the market's CPU under load.
        self._sent = Grouped(self.store.record_sent)
        self._decided = Grouped(self._write_decided)

    async def start(self, seed_pools: Callable[[], list[PoolState]]) -> None:
        """Load the state; with no pools stored yet, write `seed_pools()` first. A transaction that was
        pending when the last process stopped lands now (or when due), by the same rules."""
        pools, records = await self.store.load()
        if not pools:
            pools = seed_pools()
            await self.store.save_pools(pools)
        self.pools = {pool.pool_id: pool for pool in pools}
        for record in records:
            self._records[record.transaction.client_tx_id] = record
            if record.outcome is None:
                self._schedule(record)

    async def stop(self) -> None:
        """Stop landing: what is pending stays pending in the store, and lands at the next start."""
        for task in self._landings:
            task.cancel()
        await asyncio.gather(*self._landings, return_exceptions=True)
        self._landings.clear()

    # -- reading --------------------------------------------------------------------------------------

    def pools_for(
        self, venue: str | None = None, token_in: str | None = None, token_out: str | None = None
    ) -> list[PoolState]:
        """Copies of the pools matching every filter given (a pair in either direction), by pool id."""
        return [copy.deepcopy(pool) for pool in self.pools_matching(venue, token_in, token_out)]

    def pools_matching(
        self, venue: str | None = None, token_in: str | None = None, token_out: str | None = None
    ) -> list[PoolState]:
        """The pools matching every filter given (a pair in either direction), by pool id: the ledger's own,
        to read and not to change. A landing replaces a pool in `pools` with a new one and never changes one
        in place, so what is returned stays as it was read (readers may key caches on its identity)."""
        tokens = {token for token in (token_in, token_out) if token is not None}
        return [
            pool
            for pool_id, pool in sorted(self.pools.items())
            if (venue is None or pool.venue == venue) and tokens <= {pool.token_x, pool.token_y}
        ]

    def status(self, client_tx_id: str) -> TransactionStatus | None:
        record = self._records.get(client_tx_id)
        return None if record is None else record.status

    def landed_of_order(self, order_id: str) -> list[Landed]:
        """The transactions of an order that swapped, in the order they landed."""
        landed = [
            record.outcome
            for record in self._records.values()
            if record.transaction.order_id == order_id and isinstance(record.outcome, Landed)
        ]
        return sorted(landed, key=lambda outcome: outcome.landed_at)

    # -- sending ---------------------------------------------------------------------------------------

    async def send(self, tx: SwapTransaction) -> Landed | Dropped:
        """Send `tx` and wait for its outcome; a known `client_tx_id` gets its first outcome.

        Raises InvalidTransaction for a transaction the chain cannot consider, and what the store raises
        when the pending transaction cannot be recorded (then nothing was sent)."""
        client_tx_id = tx.client_tx_id
        known = self._records.get(client_tx_id)
        if known is not None and known.transaction != tx:
            # A signature is the transaction's: the same id with other legs or minimum is another one.
            raise InvalidTransaction(f"transaction {client_tx_id} was sent before with other content")
        if known is None:
            self._check(tx)
            now_ms = int(self.now() * 1000)
            cfg = self.config
            delay_ms = self._rng.randint(cfg.execution_delay_ms_min, cfg.execution_delay_ms_max)
            failure = self._rng.choice(CHAIN_ERRORS) if self._rng.random() < cfg.failure_rate else None
            record = TransactionRecord(
                transaction=tx, sent_at=now_ms, lands_at=now_ms + delay_ms, failure=failure
            )
            # Known before the first await: a second send of the same id waits for this one's outcome.
            self._records[client_tx_id] = record
            self._outcomes[client_tx_id] = asyncio.get_running_loop().create_future()
            # Shielded: a sent transaction is recorded and lands even if its sender stops waiting, as on a
            # chain (a caller cancelled midway must not leave a recorded transaction unknown here).
            await asyncio.shield(asyncio.ensure_future(self._record_and_schedule(record)))
        record = self._records[client_tx_id]
        if record.outcome is not None:
            return record.outcome
        # Shielded: a caller that gives up waiting does not stop the transaction from landing.
        return await asyncio.shield(self._outcomes[client_tx_id])

    async def _record_and_schedule(self, record: TransactionRecord) -> None:
        """Record `record` as sent (with the sends that come meanwhile: one write) and schedule its landing;
        when the write fails, the transaction was not sent: forgotten, and its waiters told why."""
        client_tx_id = record.transaction.client_tx_id
        try:
            await self._sent.add(record)
        except BaseException as error:
            del self._records[client_tx_id]
            outcome = self._outcomes.pop(client_tx_id)
            if isinstance(error, asyncio.CancelledError):  # the writer stopped (the process is stopping)
                outcome.cancel()
            else:
                outcome.set_exception(error)
                outcome.exception()  # (raised to the sender here; other waiters get it from the future)
            raise
        self._schedule(record)

    async def swap_now(self, pool_id: str, token_in: str, amount_in_raw: int) -> Landed | Dropped:
        """An outside trader's swap into one pool, landing at once (the flow's, and POST /swaps'): a
        transaction of the ledger like any other, of no order, with no minimum."""
        pool = self.pools.get(pool_id)
        if pool is None:
            raise UnknownPool(f"no pool {pool_id!r}")
        if token_in not in (pool.token_x, pool.token_y):
            raise InvalidTransaction(f"pool {pool_id} trades {pool.token_x}/{pool.token_y}, not {token_in}")
        token_out = pool.token_y if token_in == pool.token_x else pool.token_x
        tx = SwapTransaction(
            client_tx_id=f"swap:{uuid.uuid4()}",
            order_id="",
            token_in=token_in,
            token_out=token_out,
            legs=(SwapLeg(venue=pool.venue, pool=pool_id, amount_in_raw=amount_in_raw),),
            min_amount_out_raw=0,
            instructions=(),
            expires_at=int(self.now()) + OUTSIDE_EXPIRY_S,
        )
        self._check(tx)
        now_ms = int(self.now() * 1000)
        record = TransactionRecord(transaction=tx, sent_at=now_ms, lands_at=now_ms, failure=None)
        return await self._land(record)

    def _check(self, tx: SwapTransaction) -> None:
        if not tx.legs:
            raise InvalidTransaction("a transaction needs at least one leg")
        if tx.min_amount_out_raw < 0:
            raise InvalidTransaction("minAmountOutRaw must not be negative")
        for n, leg in enumerate(tx.legs, 1):
            pool = self.pools.get(leg.pool)
            if pool is None:
                raise UnknownPool(f"leg {n}: no pool {leg.pool!r}")
            if pool.venue != leg.venue:
                raise InvalidTransaction(f"leg {n}: pool {leg.pool} is {pool.venue}'s, not {leg.venue}'s")
            if {tx.token_in, tx.token_out} != {pool.token_x, pool.token_y}:
                raise InvalidTransaction(
                    f"leg {n}: pool {leg.pool} trades {pool.token_x}/{pool.token_y}, "
                    f"not {tx.token_in}/{tx.token_out}"
                )
            if leg.amount_in_raw <= 0:
                raise InvalidTransaction(f"leg {n}: amountInRaw must be above 0")

    # -- landing ---------------------------------------------------------------------------------------

    def _schedule(self, record: TransactionRecord) -> None:
        client_tx_id = record.transaction.client_tx_id
        if client_tx_id not in self._outcomes:
            self._outcomes[client_tx_id] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._land_when_due(record))
        self._landings.add(task)
        task.add_done_callback(self._landings.discard)

    async def _land_when_due(self, record: TransactionRecord) -> None:
        wait_s = record.lands_at / 1000 - self.now()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        outcome = self._outcomes[record.transaction.client_tx_id]
        try:
            outcome.set_result(await self._land(record))
        except Exception as error:  # a bug of ours: told to whoever waits
            log.exception("transaction %s could not land", record.transaction.client_tx_id)
            outcome.set_exception(error)

    async def _land(self, record: TransactionRecord) -> Landed | Dropped:
        """Land `record` now: decided at once on the pools as the landings before it left them (so one
        landing at a time, with no wait in between), and told once written, with the landings decided
        meanwhile, in one database transaction. A landing is never told before it is written: a restart
        then decides again, by the same rules, only what nobody was told."""
        outcome, changed = self.decide(record.transaction, record.failure, self.now())
        for pool in changed:
            self.pools[pool.pool_id] = pool
        decided = msgspec.structs.replace(record, outcome=outcome)
        await self._decided.add((decided, changed))
        if record.transaction.client_tx_id in self._records:  # (an outside swap is not kept)
            self._records[record.transaction.client_tx_id] = decided
        return outcome

    async def _write_decided(self, batch: list[tuple[TransactionRecord, list[PoolState]]]) -> None:
        """Write landings decided (with the pools they changed) at once; while the database is away the
        chain halts (its landings wait), and resumes where it stopped. Raises an error of ours at once."""
        last_state = {pool.pool_id: pool for _, changed in batch for pool in changed}
        while True:
            try:
                await self.store.record_outcomes([record for record, _ in batch], list(last_state.values()))
                return
            except StoreUnavailable as error:
                log.warning("could not record %d landings: %s", len(batch), error)
                await asyncio.sleep(STORE_RETRY_S)

    def decide(
        self, tx: SwapTransaction, failure: str | None, now: float
    ) -> tuple[Landed | Dropped, list[PoolState]]:
        """The outcome of `tx` landing at `now` (unix seconds) on the current pools, and the pools it
        changes (copies: nothing is changed here)."""
        client_tx_id = tx.client_tx_id
        if now > tx.expires_at:
            return Dropped(client_tx_id=client_tx_id, reason=EXPIRED), []
        if failure is not None:
            return Dropped(client_tx_id=client_tx_id, reason=failure), []
        after: dict[str, PoolState] = {}
        fills = []
        for leg in tx.legs:
            # A shallow copy is enough: a swap sets a pool's fields to new values (a DLMM pool's bins to a
            # new dict) and never changes what they held, so the pool in `pools` is left as it was.
            pool = after.get(leg.pool) or copy.copy(self.pools[leg.pool])
            try:
                result = pool.swap(tx.token_in, leg.amount_in_raw, int(now))
            except InsufficientLiquidity:
                return Dropped(client_tx_id=client_tx_id, reason=f"insufficient liquidity in {leg.pool}"), []
            after[leg.pool] = pool
            fills.append(
                LegFill(
                    venue=leg.venue,
                    pool=leg.pool,
                    amount_in_raw=result.amount_in_raw,
                    amount_out_raw=result.amount_out_raw,
                    fee_raw=result.fee_raw,
                )
            )
        paid = sum(fill.amount_out_raw for fill in fills)
        if paid < tx.min_amount_out_raw:
            decimals = _decimals_of(tx.token_out, after.values())
            reason = (
                f"slippage exceeded: would pay {shown(paid, decimals)} < minimum "
                f"{shown(tx.min_amount_out_raw, decimals)} {tx.token_out}"
            )
            return Dropped(client_tx_id=client_tx_id, reason=reason), []
        signature = hashlib.sha512(f"{self._signature_salt}:{client_tx_id}".encode()).digest()
        landed = Landed(
            client_tx_id=client_tx_id,
            order_id=tx.order_id,
            tx_hash=base58(signature),
            fills=tuple(fills),
            amount_out_raw=paid,
            landed_at=int(now * 1000),
        )
        return landed, list(after.values())


def _decimals_of(token: str, pools: Iterable[PoolState]) -> int:
    pool = next(iter(pools))
    return pool.decimals_x if pool.token_x == token else pool.decimals_y
