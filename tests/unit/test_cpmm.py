"""Raydium CPMM maths: known values worked by hand, and the curve's invariants for any input."""

from __future__ import annotations

from contextlib import suppress
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.pools import CpmmPool, InsufficientLiquidity, PoolState


def sol_usdc(reserve_x: int = 100_000_000_000, reserve_y: int = 15_000_000_000) -> CpmmPool:
    """100 SOL (9 decimals) against 15,000 USDC (6 decimals): 150 USDC per SOL."""
    return CpmmPool(
        pool_id="raydium-cpmm-SOL-USDC-1",
        venue="raydium",
        token_x="SOL",
        token_y="USDC",
        decimals_x=9,
        decimals_y=6,
        reserve_x=reserve_x,
        reserve_y=reserve_y,
    )


def test_spot_price_is_the_reserves_ratio_in_whole_tokens():
    pool = sol_usdc()

    assert pool.spot_price("SOL") == Decimal(150)
    assert pool.spot_price("USDC") == Decimal(1) / Decimal(150)


def test_one_sol_in_pays_the_constant_product_after_a_fee_rounded_up():
    pool = sol_usdc()

    result = pool.swap("SOL", 1_000_000_000, now=0)

    # fee = ceil(1e9 * 2_500 / 1e6) = 2_500_000; traded = 997_500_000
    # out = floor(997_500_000 * 15e9 / (100e9 + 997_500_000)) = floor(148_147_231.49...) = 148_147_231
    assert result.amount_in_raw == 1_000_000_000
    assert result.fee_raw == 2_500_000
    assert result.amount_out_raw == 148_147_231
    # (1 - (148_147_231 / 997_500_000) / 0.15) * 10_000 = 98.7620...
    assert result.price_impact_bps == Decimal("98.76")
    # protocol 12 % and fund 4 % of the fee leave the reserves: 300_000 + 100_000
    assert pool.reserve_x == 100_000_000_000 + 1_000_000_000 - 400_000
    assert pool.reserve_y == 15_000_000_000 - 148_147_231


def test_the_fee_rounds_up_to_a_whole_base_unit():
    # 1_001 * 2_500 / 1e6 = 2.5025 -> 3; out = floor(998 * 15e9 / (100e9 + 998)) = 149
    result = sol_usdc().quote("SOL", 1_001, now=0)

    assert (result.fee_raw, result.amount_out_raw) == (3, 149)


def test_the_other_direction_uses_the_reserves_the_other_way_round():
    # 150 USDC in: fee = 375_000; out = floor(149_625_000 * 100e9 / (15e9 + 149_625_000)) = 987_648_209
    result = sol_usdc().quote("USDC", 150_000_000, now=0)

    assert (result.fee_raw, result.amount_out_raw) == (375_000, 987_648_209)


def test_a_swap_that_would_overflow_the_vault_is_refused_and_changes_nothing():
    """The program's token accounts hold a u64: a vault cannot be pushed past it (one call used to)."""
    pool = sol_usdc(reserve_x=2**64 - 1 - 10**9, reserve_y=2**60)
    with pytest.raises(InsufficientLiquidity, match="u64"):
        pool.swap("SOL", 10**9 + 1, now=0)
    assert pool == sol_usdc(reserve_x=2**64 - 1 - 10**9, reserve_y=2**60)
    assert pool.swap("SOL", 10**9, now=0).amount_out_raw > 0  # up to the brim is fine


def test_an_input_that_buys_nothing_is_refused():
    with pytest.raises(InsufficientLiquidity, match="buy nothing"):
        sol_usdc().quote("SOL", 1, now=0)  # the fee rounds up to the whole input


@pytest.mark.parametrize(("token", "amount"), [("BONK", 1_000), ("SOL", 0), ("SOL", -5)])
def test_a_token_the_pool_does_not_trade_or_no_amount_is_a_value_error(token, amount):
    with pytest.raises(ValueError):
        sol_usdc().quote(token, amount, now=0)


reserves = st.integers(min_value=1_000, max_value=10**15)
amounts = st.integers(min_value=1, max_value=10**15)


@given(reserves, reserves, amounts, amounts, st.booleans())
def test_more_in_never_pays_less_and_never_more_than_the_reserve(reserve_x, reserve_y, a, b, x_in):
    pool = sol_usdc(reserve_x, reserve_y)
    token_in = "SOL" if x_in else "USDC"
    reserve_out = reserve_y if x_in else reserve_x
    small, large = sorted((a, b))

    def out(amount: int) -> int:
        try:
            return pool.quote(token_in, amount, now=0).amount_out_raw
        except InsufficientLiquidity:
            return 0

    assert 0 <= out(small) <= out(large) < reserve_out


@given(reserves, reserves, amounts, st.booleans())
def test_the_product_of_the_reserves_never_decreases(reserve_x, reserve_y, amount, x_in):
    pool = sol_usdc(reserve_x, reserve_y)
    quoted = None
    try:
        quoted = pool.quote("SOL" if x_in else "USDC", amount, now=0)
        swapped = pool.swap("SOL" if x_in else "USDC", amount, now=0)
    except InsufficientLiquidity:
        assert (pool.reserve_x, pool.reserve_y) == (reserve_x, reserve_y)
        return

    assert swapped == quoted
    assert pool.reserve_x * pool.reserve_y >= reserve_x * reserve_y
    assert swapped.price_impact_bps >= 0


@given(reserves, reserves, amounts)
def test_quote_leaves_the_pool_as_it_was(reserve_x, reserve_y, amount):
    pool = sol_usdc(reserve_x, reserve_y)

    with suppress(InsufficientLiquidity):
        pool.quote("SOL", amount, now=0)

    assert pool == sol_usdc(reserve_x, reserve_y)


@given(reserves, reserves)
def test_a_pool_survives_the_wire(reserve_x, reserve_y):
    pool = sol_usdc(reserve_x, reserve_y)

    wire = msgspec.json.encode(pool)

    assert msgspec.json.decode(wire)["kind"] == "cpmm"
    assert msgspec.convert(msgspec.to_builtins(pool), PoolState) == pool
    assert msgspec.json.decode(wire, type=PoolState) == pool


fee_rates = st.sampled_from([0, 100, 2_500, 10_000, 40_000, 999_999])


@given(reserves, reserves, amounts, st.booleans(), fee_rates)
def test_no_swap_pays_more_than_its_input_at_the_rate_ceiling(reserve_x, reserve_y, amount, x_in, fee_rate):
    pool = msgspec.structs.replace(sol_usdc(reserve_x, reserve_y), trade_fee_rate=fee_rate)
    token_in = "SOL" if x_in else "USDC"
    try:
        quoted = pool.quote(token_in, amount, now=0)
    except InsufficientLiquidity:
        with pytest.raises(InsufficientLiquidity):
            pool.amount_out(token_in, amount, now=0)
        return

    assert pool.amount_out(token_in, amount, now=0) == quoted.amount_out_raw
    assert quoted.amount_out_raw <= amount * pool.rate_ceiling(token_in, now=0)
