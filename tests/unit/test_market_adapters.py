"""The in-process adapter keeps the `Chain` port's promises over the market, and the ledger keeps its books:
whatever is sent, repeated or refused, the pools are what the landed fills made of them."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore.base import StoreUnavailable
from market.in_process import InProcessChain
from market.ledger import InvalidTransaction, Ledger, LedgerConfig, TransactionRecord
from market.market import Market, MarketConfig
from market.memory import InMemoryMarketStore
from tests.unit.test_market_ledger import POOL, SOL, sol_usdc, transaction
from venues.base import VenueError
from venues.chain import Dropped, Landed, SwapLeg, SwapTransaction
from venues.chain_wire import pool_to_wire

INSTANT = MarketConfig(execution_delay_ms_min=0, execution_delay_ms_max=0, seed=1, flow_interval_ms=0)


class UnreachableStore(InMemoryMarketStore):
    async def record_sent(self, records: list[TransactionRecord]) -> None:
        raise StoreUnavailable("the database cannot be reached (OperationalError)")


async def chain_on(store: InMemoryMarketStore, quote_delay_ms: int = 0) -> InProcessChain:
    market = Market(store, dataclasses.replace(INSTANT, quote_delay_ms=quote_delay_ms))
    await market.start()
    return InProcessChain(market)


async def test_pools_are_the_venues_copies_for_the_pair_after_the_quote_delay():
    chain = await chain_on(InMemoryMarketStore(), quote_delay_ms=30)
    started = time.monotonic()
    pools = await chain.pools("meteora", "USDC", "SOL")
    assert time.monotonic() - started >= 0.03
    assert pools and all(
        (pool.venue, pool.token_x, pool.token_y) == ("meteora", "SOL", "USDC") for pool in pools
    )
    pools[0].bins.clear()  # type: ignore[union-attr]
    assert chain.market.ledger.pools[pools[0].pool_id].bins  # type: ignore[union-attr]
    assert chain.venues == ("raydium", "meteora")


async def test_the_pools_json_is_the_wire_of_the_pools_as_the_last_landing_left_them():
    market = (await chain_on(InMemoryMarketStore(), quote_delay_ms=30)).market
    pair = ("meteora", "SOL", "USDC")

    def wire_now() -> list[dict[str, object]]:
        return [pool_to_wire(pool) for pool in market.ledger.pools_for(*pair)]

    started = time.monotonic()
    before = msgspec.json.decode(await market.read_pools_json(*pair))
    assert time.monotonic() - started >= 0.03
    assert before == wire_now() and len(before) >= 1
    pool_id = before[0]["poolId"]
    assert market.pool_json(pool_id) is market.pool_json(pool_id)  # encoded once while unchanged
    await market.ledger.swap_now(pool_id, "SOL", 50 * SOL)
    after = msgspec.json.decode(await market.read_pools_json(*pair))
    assert after == wire_now() and after[0] != before[0] and after[1:] == before[1:]
    assert msgspec.json.decode(market.pool_json(pool_id) or b"") == after[0]
    assert market.pool_json("no-such-pool") is None


async def test_sending_landing_and_status_through_the_port():
    chain = await chain_on(InMemoryMarketStore())
    tx = transaction((POOL, SOL))
    landed = await chain.send_transaction(tx)
    assert isinstance(landed, Landed)
    assert await chain.send_transaction(tx) == landed == await chain.transaction_status(tx.client_tx_id)
    assert await chain.transaction_status("never:1") is None


async def test_what_the_chain_refuses_outright_is_dropped_and_what_it_cannot_record_is_a_venue_error():
    chain = await chain_on(InMemoryMarketStore())
    refused = await chain.send_transaction(transaction(("raydium-cpmm-SOL-USDC-42", SOL)))
    assert isinstance(refused, Dropped) and "no pool" in refused.reason
    first = transaction((POOL, SOL))
    assert isinstance(await chain.send_transaction(first), Landed)
    other = msgspec.structs.replace(first, min_amount_out_raw=1)  # the same id, another transaction
    refused = await chain.send_transaction(other)
    assert isinstance(refused, Dropped) and "other content" in refused.reason
    assert await chain.transaction_status(first.client_tx_id) == await chain.send_transaction(first)
    unreachable = await chain_on(UnreachableStore())
    with pytest.raises(VenueError, match="unavailable"):
        await unreachable.send_transaction(transaction((POOL, SOL)))
    assert await unreachable.transaction_status("order-1:1") is None  # nothing was sent: it may be again


sends = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=5),  # which client_tx_id (repeats are likely)
        st.sampled_from(["SOL", "USDC"]),
        st.integers(min_value=1, max_value=50_000),  # amount, in thousandths of a whole token
        st.booleans(),  # an impossible minimum
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(sends)
def test_the_pools_are_what_the_landed_fills_made_of_them(sent):
    async def run() -> None:
        ledger = Ledger(
            InMemoryMarketStore(), LedgerConfig(execution_delay_ms_min=0, execution_delay_ms_max=0)
        )
        await ledger.start(lambda: [sol_usdc()])
        replayed = sol_usdc()
        first_outcomes: dict[str, Landed | Dropped] = {}
        first_sent: dict[str, SwapTransaction] = {}
        for n, token_in, thousandths, impossible in sent:
            decimals = 9 if token_in == "SOL" else 6
            tx = SwapTransaction(
                client_tx_id=f"order-{n}:1",
                order_id=f"order-{n}",
                token_in=token_in,
                token_out="USDC" if token_in == "SOL" else "SOL",
                legs=(SwapLeg(venue="raydium", pool=POOL, amount_in_raw=thousandths * 10 ** (decimals - 3)),),
                min_amount_out_raw=10**30 if impossible else 0,
                instructions=(),
                expires_at=int(time.time()) + 60,
            )
            if first_sent.setdefault(tx.client_tx_id, tx) != tx:  # the same id, another transaction
                with pytest.raises(InvalidTransaction, match="other content"):
                    await ledger.send(tx)
                continue
            outcome = await ledger.send(tx)
            if tx.client_tx_id in first_outcomes:
                assert outcome == first_outcomes[tx.client_tx_id]  # a repeat gets the first outcome
                continue
            first_outcomes[tx.client_tx_id] = outcome
            if isinstance(outcome, Landed):
                before = copy.deepcopy(replayed)
                result = replayed.swap(token_in, tx.legs[0].amount_in_raw, 0)
                assert outcome.fills[0].amount_out_raw == result.amount_out_raw
                assert replayed.reserve_x * replayed.reserve_y >= before.reserve_x * before.reserve_y
            else:
                assert impossible and outcome.reason.startswith("slippage exceeded")
        assert ledger.pools[POOL] == replayed

    asyncio.run(run())
