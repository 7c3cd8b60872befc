"""The market's seeded pools and its flow: realistic depth, repeatable from a seed, arbitrage back to the
reference price; and its wire format, read back exactly."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from domain.pools import PoolState
from domain.tokens import TOKENS, reference_price
from market.flow import amount_to_reach
from market.market import Market, MarketConfig
from market.memory import InMemoryMarketStore
from market.seed import seed_pools
from venues.chain import Dropped, Landed, LegFill, Pending
from venues.chain_wire import pool_from_wire, pool_to_wire, status_from_wire, to_wire


def impact_bps(pool: PoolState, token_in: str, usd: int) -> Decimal:
    decimals = pool.decimals_x if token_in == pool.token_x else pool.decimals_y
    amount = int((Decimal(usd) / TOKENS[token_in].reference_usd).scaleb(decimals))
    return pool.quote(token_in, amount, 0).price_impact_bps


def test_sol_pools_move_a_few_bps_for_1k_and_percents_for_1m():
    sol_usdc = [pool for pool in seed_pools(seed=1) if {pool.token_x, pool.token_y} == {"SOL", "USDC"}]
    assert sol_usdc
    for pool in sol_usdc:
        assert impact_bps(pool, "SOL", 1_000) < 10, pool.pool_id
        assert impact_bps(pool, "SOL", 1_000_000) > 100, pool.pool_id


def test_every_pair_has_pools_named_after_it_and_seeding_is_repeatable():
    pools = seed_pools(seed=3)
    assert pools == seed_pools(seed=3) and pools != seed_pools(seed=4)
    pairs = {frozenset({pool.token_x, pool.token_y}) for pool in pools}
    assert len(pairs) == 10  # every pair of SOL, USDC, USDT, BONK, JUP
    for pool in pools:
        kind = pool_to_wire(pool)["kind"]
        assert pool.pool_id.startswith(f"{pool.venue}-{kind}-{pool.token_x}-{pool.token_y}-")
        reference = reference_price(pool.token_x, pool.token_y)
        assert abs(pool.spot_price(pool.token_x) / reference - 1) < Decimal("0.01")


async def market(seed: int = 5) -> Market:
    config = MarketConfig(execution_delay_ms_min=0, execution_delay_ms_max=0, seed=seed, flow_interval_ms=0)
    market = Market(InMemoryMarketStore(), config)
    await market.start()
    return market


async def test_the_flow_is_repeatable_from_its_seed_and_moves_prices():
    first, second = await market(), await market()
    before = {pool_id: pool.spot_price(pool.token_x) for pool_id, pool in first.ledger.pools.items()}
    for _ in range(5):
        await first.flow.tick()
        await second.flow.tick()
    assert first.flow.deviation_bps == second.flow.deviation_bps
    assert {i: p.spot_price(p.token_x) for i, p in first.ledger.pools.items()} == {
        i: p.spot_price(p.token_x) for i, p in second.ledger.pools.items()
    }
    assert any(pool.spot_price(pool.token_x) != before[i] for i, pool in first.ledger.pools.items())


async def test_arbitrage_pulls_a_pool_back_to_the_reference_price():
    chain = await market()
    pool_id = "raydium-cpmm-SOL-USDC-1"
    await chain.ledger.swap_now(pool_id, "USDC", 300_000 * 10**6)  # SOL now dearer here by percents
    target = chain.flow.reference_price("SOL", "USDC")
    assert chain.ledger.pools[pool_id].spot_price("SOL") / target - 1 > Decimal("0.05")
    await chain.flow.arbitrage()
    gap = chain.ledger.pools[pool_id].spot_price("SOL") / target - 1
    assert Decimal(0) <= gap < Decimal("0.0001")  # up to the reference, not past it


@pytest.mark.parametrize("token_in", ["SOL", "USDC"])
def test_the_amount_to_reach_a_price_stops_short_of_it(token_in):
    pool = next(pool for pool in seed_pools(seed=1) if pool.pool_id == "raydium-cpmm-SOL-USDC-1")
    factor = Decimal("0.98") if token_in == "SOL" else Decimal("1.02")
    target = pool.spot_price("SOL") * factor
    amount = amount_to_reach(pool, token_in, target, 0)
    after = pool_after(pool, token_in, amount)
    beyond = pool_after(pool, token_in, amount + 1)
    if token_in == "SOL":
        assert after.spot_price("SOL") >= target > beyond.spot_price("SOL")
    else:
        assert after.spot_price("SOL") <= target < beyond.spot_price("SOL")


def pool_after(pool: PoolState, token_in: str, amount: int) -> PoolState:
    trial = copy.deepcopy(pool)
    trial.swap(token_in, amount, 0)
    return trial


def test_pools_and_outcomes_survive_the_wire_exactly():
    for pool in seed_pools(seed=2):
        wire = pool_to_wire(pool)
        assert pool_from_wire(wire) == pool
        assert all(isinstance(wire[key], str) for key in wire if key.endswith("Raw"))
        assert Decimal(wire["spotPrice"]) == pool.spot_price(pool.token_x)
    fill = LegFill(venue="raydium", pool="p", amount_in_raw=2**60, amount_out_raw=10**18, fee_raw=3)
    landed = Landed(
        client_tx_id="o:1", order_id="o", tx_hash="h", fills=(fill,), amount_out_raw=10**18, landed_at=1
    )
    wire = to_wire(landed)
    assert wire["status"] == "landed" and wire["fills"][0]["amountInRaw"] == str(2**60)
    for status in (
        landed,
        Dropped(client_tx_id="o:1", reason="blockhash expired"),
        Pending(client_tx_id="o:1"),
    ):
        assert status_from_wire(to_wire(status)) == status
