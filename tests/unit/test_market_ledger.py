"""The ledger's rules, on pools held in memory: each transaction once, all of its legs or none, refused below
its minimum or past its expiry, decided on the pools as they are when it lands."""

from __future__ import annotations

import asyncio
import copy
import time

import msgspec
import pytest

from domain.amounts import shown
from domain.pools import CpmmPool, DlmmPool, PoolState
from eventstore.base import StoreUnavailable
from market import ledger as ledger_module
from market.ledger import (
    CHAIN_ERRORS,
    InvalidTransaction,
    Ledger,
    LedgerConfig,
    TransactionRecord,
)
from market.memory import InMemoryMarketStore
from market.seed import seed_pools
from venues.chain import Dropped, Landed, Pending, SwapLeg, SwapTransaction

SOL, USDC = 10**9, 10**6


def sol_usdc(n: int = 1, sol: int = 1_000, usdc: int = 150_000) -> CpmmPool:
    return CpmmPool(
        pool_id=f"raydium-cpmm-SOL-USDC-{n}",
        venue="raydium",
        token_x="SOL",
        token_y="USDC",
        decimals_x=9,
        decimals_y=6,
        reserve_x=sol * SOL,
        reserve_y=usdc * USDC,
    )


def transaction(
    *legs: tuple[str, int], client_tx_id: str = "order-1:1", minimum: int = 0, expires_in_s: int = 60
) -> SwapTransaction:
    return SwapTransaction(
        client_tx_id=client_tx_id,
        order_id=client_tx_id.split(":")[0],
        token_in="SOL",
        token_out="USDC",
        legs=tuple(SwapLeg(venue="raydium", pool=pool, amount_in_raw=amount) for pool, amount in legs),
        min_amount_out_raw=minimum,
        instructions=(),
        expires_at=int(time.time()) + expires_in_s,
    )


async def started(
    store: InMemoryMarketStore | None = None, pools: list[CpmmPool] | None = None, **config: object
) -> Ledger:
    settings = {"execution_delay_ms_min": 0, "execution_delay_ms_max": 0, "seed": 7, **config}
    ledger = Ledger(store or InMemoryMarketStore(), LedgerConfig(**settings))  # type: ignore[arg-type]
    await ledger.start(lambda: pools if pools is not None else [sol_usdc()])
    return ledger


POOL = "raydium-cpmm-SOL-USDC-1"


async def test_a_transaction_sent_twice_at_once_lands_once():
    store = InMemoryMarketStore()
    ledger = await started(store, execution_delay_ms_min=20, execution_delay_ms_max=20)
    expected = sol_usdc().quote("SOL", SOL, 0).amount_out_raw
    tx = transaction((POOL, SOL))
    first, second = await asyncio.gather(ledger.send(tx), ledger.send(tx))
    assert isinstance(first, Landed) and first == second
    assert first.amount_out_raw == expected and len(first.tx_hash) >= 86  # 64 bytes in base58
    assert ledger.pools[POOL].reserve_y == 150_000 * USDC - expected  # one swap, not two
    assert store.writes == 2  # recorded pending once, decided once


async def test_a_repeat_after_landing_returns_the_first_outcome_and_swaps_nothing():
    ledger = await started()
    tx = transaction((POOL, SOL))
    first = await ledger.send(tx)
    pool_after = copy.deepcopy(ledger.pools[POOL])
    assert await ledger.send(tx) == first
    assert ledger.pools[POOL] == pool_after
    assert ledger.status(tx.client_tx_id) == first
    assert ledger.status("never:1") is None


def test_amounts_in_reasons_are_exact_whole_tokens():
    assert [shown(raw, 6) for raw in (0, 1, 1_500_000, 10**15)] == [
        "0",
        "0.000001",
        "1.5",
        "1000000000",
    ]


async def test_paying_less_than_the_minimum_is_refused_and_changes_nothing():
    ledger = await started()
    pays = sol_usdc().quote("SOL", SOL, 0).amount_out_raw  # 149.175 USDC and some
    outcome = await ledger.send(transaction((POOL, SOL), minimum=pays + 1))
    would_pay, minimum = shown(pays, 6), shown(pays + 1, 6)
    assert outcome == Dropped(
        client_tx_id="order-1:1", reason=f"slippage exceeded: would pay {would_pay} < minimum {minimum} USDC"
    )
    assert ledger.pools[POOL] == sol_usdc()
    assert ledger.landed_of_order("order-1") == []


async def test_the_pools_are_taken_as_they_are_when_the_transaction_lands():
    ledger = await started(execution_delay_ms_min=50, execution_delay_ms_max=50)
    sending = asyncio.create_task(ledger.send(transaction((POOL, SOL))))
    await asyncio.sleep(0)  # sent (pending) before the outside trade
    assert isinstance(ledger.status("order-1:1"), Pending)
    await ledger.swap_now(POOL, "SOL", 100 * SOL)  # someone sells SOL first: SOL is worth less at landing
    moved = copy.deepcopy(ledger.pools[POOL])
    landed = await sending
    assert isinstance(landed, Landed)
    assert landed.amount_out_raw == moved.quote("SOL", SOL, 0).amount_out_raw
    assert landed.amount_out_raw < sol_usdc().quote("SOL", SOL, 0).amount_out_raw


async def test_the_legs_land_together_or_not_at_all():
    tiny = sol_usdc(2, sol=1, usdc=0)  # pays nothing: its leg cannot swap
    tiny.reserve_y = 1
    ledger = await started(pools=[sol_usdc(), tiny])
    outcome = await ledger.send(transaction((POOL, SOL), ("raydium-cpmm-SOL-USDC-2", 1)))
    assert isinstance(outcome, Dropped) and "insufficient liquidity" in outcome.reason
    assert ledger.pools[POOL] == sol_usdc()

    both = await ledger.send(transaction((POOL, SOL), (POOL, 2 * SOL), client_tx_id="order-2:1"))
    assert isinstance(both, Landed) and [fill.amount_in_raw for fill in both.fills] == [SOL, 2 * SOL]
    assert both.amount_out_raw == sum(fill.amount_out_raw for fill in both.fills)
    assert ledger.pools[POOL].reserve_y == 150_000 * USDC - both.amount_out_raw


async def test_a_transaction_past_its_expiry_is_dropped():
    ledger = await started()
    outcome = await ledger.send(transaction((POOL, SOL), expires_in_s=-1))
    assert outcome == Dropped(client_tx_id="order-1:1", reason="blockhash expired")
    assert ledger.pools[POOL] == sol_usdc()


async def test_chain_errors_come_at_the_failure_rate_and_change_nothing():
    ledger = await started(failure_rate=1.0)
    outcome = await ledger.send(transaction((POOL, SOL)))
    assert isinstance(outcome, Dropped) and outcome.reason in CHAIN_ERRORS
    assert ledger.pools[POOL] == sol_usdc()


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ((), "at least one leg"),
        ((("raydium-cpmm-SOL-USDT-1", SOL),), "no pool"),
        (((POOL, 0),), "above 0"),
    ],
)
async def test_a_transaction_the_chain_cannot_consider_is_refused_and_not_recorded(legs, message):
    store = InMemoryMarketStore()
    ledger = await started(store)
    with pytest.raises(InvalidTransaction, match=message):
        await ledger.send(transaction(*legs))
    assert ledger.status("order-1:1") is None and store.transactions == {}


async def test_a_restarted_ledger_lands_what_was_pending_and_remembers_what_landed():
    store = InMemoryMarketStore()
    ledger = await started(store, execution_delay_ms_min=10_000, execution_delay_ms_max=10_000)
    landed_tx, pending_tx = transaction((POOL, SOL)), transaction((POOL, SOL), client_tx_id="order-2:1")
    sending = asyncio.create_task(ledger.send(pending_tx))
    await asyncio.sleep(0)
    await ledger.stop()  # the process dies with order-2's transaction in flight
    sending.cancel()

    # Started again later: the pending transaction is due, and lands by the same rules.
    instant = LedgerConfig(execution_delay_ms_min=0, execution_delay_ms_max=0, seed=7)
    later = Ledger(store, instant, now=lambda: time.time() + 10)
    await later.start(lambda: [])
    landed = await later.send(pending_tx)
    assert isinstance(landed, Landed) and later.landed_of_order("order-2") == [landed]
    assert later.pools[POOL].reserve_x > sol_usdc().reserve_x

    first = await later.send(landed_tx)  # never sent before: lands now
    again = Ledger(store, instant)
    await again.start(lambda: [])
    assert await again.send(landed_tx) == first and await again.send(pending_tx) == landed
    assert again.pools == later.pools


async def test_landed_swaps_of_an_order_are_listed_in_landing_order():
    ledger = await started()
    first = await ledger.send(transaction((POOL, SOL), client_tx_id="order-1:1", minimum=10**18))
    second = await ledger.send(transaction((POOL, SOL), client_tx_id="order-1:2"))
    await ledger.send(transaction((POOL, SOL), client_tx_id="order-9:1"))
    assert isinstance(first, Dropped)
    assert ledger.landed_of_order("order-1") == [second]


async def test_an_outside_swap_lands_at_once_and_is_no_orders():
    store = InMemoryMarketStore()
    ledger = await started(store, execution_delay_ms_min=10_000, execution_delay_ms_max=10_000)
    outcome = await ledger.swap_now(POOL, "USDC", 1_500 * USDC)
    assert isinstance(outcome, Landed) and outcome.order_id == ""
    assert ledger.pools[POOL].reserve_y > 150_000 * USDC
    assert store.pools[POOL] == ledger.pools[POOL]  # written through
    with pytest.raises(InvalidTransaction, match="not BONK"):
        await ledger.swap_now(POOL, "BONK", 1)


class FlakyStore(InMemoryMarketStore):
    """A database that is away for the first `failures` writes of landings."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def record_outcomes(self, records: list[TransactionRecord], pools: list[PoolState]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("the database cannot be reached (OperationalError)")
        await super().record_outcomes(records, pools)


async def test_a_landing_waits_for_the_database_and_changes_nothing_until_written(monkeypatch):
    monkeypatch.setattr(ledger_module, "STORE_RETRY_S", 0)
    store = FlakyStore(failures=3)
    ledger = await started(store)
    landed = await ledger.send(transaction((POOL, SOL)))
    assert isinstance(landed, Landed) and store.failures == 0
    assert store.pools[POOL] == ledger.pools[POOL] != sol_usdc()


async def test_a_transaction_of_no_order_is_told_once_decided():
    ledger = await started()
    tx = msgspec.structs.replace(transaction((POOL, SOL)), order_id="")
    landed = await ledger.send(tx)
    assert ledger.status(tx.client_tx_id) == landed


class CountingStore(InMemoryMarketStore):
    """Keeps the transactions of each write of sent transactions; `unreachable`: every such write fails;
    each such write waits for `gate`."""

    def __init__(self, unreachable: bool = False) -> None:
        super().__init__()
        self.unreachable = unreachable
        self.sent_batches: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.writing = asyncio.Event()

    async def record_sent(self, records: list[TransactionRecord]) -> None:
        self.sent_batches.append([record.transaction.client_tx_id for record in records])
        self.writing.set()
        await self.gate.wait()
        if self.unreachable:
            raise StoreUnavailable("the database cannot be reached (OperationalError)")
        await super().record_sent(records)


async def test_transactions_sent_together_are_recorded_in_one_write_before_any_lands():
    store = CountingStore()
    ledger = await started(store, execution_delay_ms_min=20, execution_delay_ms_max=20)
    ids = [f"order-{n}:1" for n in range(5)]
    outcomes = await asyncio.gather(*(ledger.send(transaction((POOL, SOL), client_tx_id=i)) for i in ids))
    assert all(isinstance(outcome, Landed) for outcome in outcomes)
    assert store.sent_batches == [ids]
    assert {i: store.transactions[i].outcome for i in ids} == dict(zip(ids, outcomes, strict=True))


async def test_a_write_of_sent_transactions_that_fails_is_told_to_each_sender_and_sends_none():
    store = CountingStore(unreachable=True)
    ledger = await started(store)
    ids = ["order-1:1", "order-2:1"]
    results = await asyncio.gather(
        *(ledger.send(transaction((POOL, SOL), client_tx_id=i)) for i in ids), return_exceptions=True
    )
    assert store.sent_batches == [ids]
    assert all(isinstance(result, StoreUnavailable) for result in results)
    assert [ledger.status(i) for i in ids] == [None, None]
    assert ledger.pools[POOL] == sol_usdc()
    store.unreachable = False  # the database is back: the same transaction can be sent again
    assert isinstance(await ledger.send(transaction((POOL, SOL), client_tx_id=ids[0])), Landed)


async def test_a_sent_transaction_is_recorded_once_and_lands_even_if_its_sender_stops_waiting():
    """As on a chain: once sent, a transaction does not depend on its sender, whether its write was on its way
    or waiting for the next; asking again finds it (no second write of the same id)."""
    store = CountingStore()
    ledger = await started(store)
    store.gate.clear()
    txs = [transaction((POOL, SOL), client_tx_id=f"order-{n}:1") for n in (1, 2)]
    writing = asyncio.create_task(ledger.send(txs[0]))
    await store.writing.wait()
    waiting = asyncio.create_task(ledger.send(txs[1]))
    await asyncio.sleep(0)  # (a turn of the loop: sent, waiting for the next write)
    writing.cancel()
    waiting.cancel()
    store.gate.set()
    outcomes = [await ledger.send(tx) for tx in txs]
    assert all(isinstance(outcome, Landed) for outcome in outcomes)
    assert store.sent_batches == [["order-1:1"], ["order-2:1"]]
    assert [store.transactions[tx.client_tx_id].outcome for tx in txs] == outcomes


async def test_a_pool_once_read_is_never_changed_by_a_landing():
    """Readers may keep what pools_matching gave them (the API keeps its JSON by the pool's identity)."""
    dlmm = next(pool for pool in seed_pools(seed=1) if isinstance(pool, DlmmPool))
    ledger = await started(pools=[dlmm])
    (read,) = ledger.pools_matching(dlmm.venue, dlmm.token_x, dlmm.token_y)
    before = copy.deepcopy(read)
    tx = msgspec.structs.replace(
        transaction(),
        token_in=dlmm.token_x,
        token_out=dlmm.token_y,
        legs=(SwapLeg(venue=dlmm.venue, pool=dlmm.pool_id, amount_in_raw=10**dlmm.decimals_x * 50),),
    )
    assert isinstance(await ledger.send(tx), Landed)
    assert read == before
    assert ledger.pools[dlmm.pool_id] != before  # replaced by the pool the landing left
