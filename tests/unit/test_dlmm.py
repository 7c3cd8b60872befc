"""Meteora DLMM maths: bin prices, one bin's swap, walks over bins, fees and volatility, worked by hand; and
the walk checked against a per-bin reference for any pool."""

from __future__ import annotations

import math
from contextlib import suppress
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.pools import DlmmPool, InsufficientLiquidity, PoolState, bin_id_at, spread_bins
from domain.pools.dlmm import FEE_PRECISION, MAX_FEE_RATE, ONE, bin_price

NOW = 1_000_000


def pool(
    bins: dict[int, tuple[int, int]], active_id: int = 0, bin_step: int = 100, **parameters: int
) -> DlmmPool:
    """SOL (9 decimals) as token_x, USDC (6) as token_y; by default a 1 % base fee and no variable fee."""
    fees = {"base_factor": 10_000, "variable_fee_control": 0} | parameters
    return DlmmPool(
        pool_id="meteora-dlmm-SOL-USDC-1",
        venue="meteora",
        token_x="SOL",
        token_y="USDC",
        decimals_x=9,
        decimals_y=6,
        bin_step=bin_step,
        active_id=active_id,
        bins=bins,
        **fees,
    )


def test_a_swap_that_would_overflow_a_bin_is_refused_and_changes_nothing():
    """A bin's amounts are u64 in the program: selling into a bin already holding nearly that much fails."""
    full = pool({0: (2**64 - 10**9, 10**15)})
    with pytest.raises(InsufficientLiquidity, match="u64"):
        full.swap("SOL", 2 * 10**9, now=0)
    assert full == pool({0: (2**64 - 10**9, 10**15)})


# -- prices -----------------------------------------------------------------------------------------


def test_bin_zero_is_price_one_and_each_bin_one_step_apart():
    assert bin_price(0, 100) == ONE
    assert Fraction(bin_price(1, 100), ONE) == pytest.approx(Fraction(101, 100), rel=1e-15)
    assert Fraction(bin_price(-1, 100), ONE) == pytest.approx(Fraction(100, 101), rel=1e-15)
    assert Fraction(bin_price(1_000, 10), ONE) == pytest.approx(Fraction(10_010, 10_000) ** 1_000, rel=1e-12)


def test_spot_price_applies_the_decimals():
    # bin 0: one base unit of SOL for one of USDC, so 10^(9 - 6) USDC per SOL
    sol_usdc = pool({0: (1, 1)})

    assert sol_usdc.spot_price("SOL") == Decimal(1_000)
    assert sol_usdc.spot_price("USDC") == Decimal("0.001")


@given(
    st.decimals(min_value=Decimal("0.00001"), max_value=Decimal(100_000), places=5),
    st.sampled_from([1, 10, 100]),
)
def test_bin_id_at_finds_the_bin_holding_the_price(price, bin_step):
    bin_id = bin_id_at(price, bin_step, decimals_x=9, decimals_y=6)

    target = Fraction(price) / 1_000 * ONE
    assert bin_price(bin_id, bin_step) <= target < bin_price(bin_id + 1, bin_step)


def test_spread_bins_puts_y_below_x_above_and_the_remainders_in_the_active_bin():
    assert spread_bins(0, amount_x=10, amount_y=7, bins_per_side=2) == {
        -2: (0, 2),
        -1: (0, 2),
        0: (4, 3),
        1: (3, 0),
        2: (3, 0),
    }


# -- swaps, by hand ---------------------------------------------------------------------------------


def test_inside_one_bin_the_price_does_not_move():
    sol_usdc = pool({0: (0, 10_000)})

    result = sol_usdc.swap("SOL", 1_000, now=NOW)

    # fee = ceil(1_000 * 1e7 / 1e9) = 10; out = 990 at price 1
    assert (result.amount_out_raw, result.fee_raw, result.price_impact_bps) == (990, 10, Decimal(0))
    assert sol_usdc.bins == {0: (990, 9_010)}
    assert sol_usdc.active_id == 0


def test_buying_x_with_y_pays_x_from_the_bin():
    result = pool({0: (10_000, 0)}).quote("USDC", 1_000, now=NOW)

    assert (result.amount_out_raw, result.fee_raw) == (990, 10)


def test_a_swap_that_empties_a_bin_goes_on_in_the_next_one():
    sol_usdc = pool({0: (0, 500), -1: (0, 10_000)})

    result = sol_usdc.swap("SOL", 1_000, now=NOW)

    # bin 0 (price 1): emptying it takes 500 + ceil(500 * 1e7 / (1e9 - 1e7)) = 500 + 6 = 506
    # bin -1 (price 1/1.01): 494 left, fee ceil(4.94) = 5, out floor(489 / 1.01) = 484
    assert (result.amount_out_raw, result.fee_raw) == (984, 11)
    assert sol_usdc.bins == {0: (500, 0), -1: (489, 9_516)}
    assert sol_usdc.active_id == -1
    # (1 - (984 / 989) / 1) * 10_000 = 50.556...
    assert result.price_impact_bps == Decimal("50.56")
    # one bin from the reference bin: the accumulator is 10_000
    assert (sol_usdc.index_reference, sol_usdc.volatility_accumulator) == (0, 10_000)
    assert sol_usdc.last_update_timestamp == NOW


def test_the_fee_comes_off_the_whole_input_before_the_bin_is_filled():
    sol_usdc = pool({0: (0, 990)})

    result = sol_usdc.swap("SOL", 1_001, now=NOW)

    # fee = ceil(1_001 * 1 %) = 11; the 990 left buys exactly the bin's 990, so nothing goes on
    # (an older program cut the input to 990 + ceil(990 * 1e7 / 990e6) = 1_000 and had 1 left over)
    assert (result.amount_out_raw, result.fee_raw) == (990, 11)
    assert sol_usdc.bins == {0: (990, 0)}


def test_the_variable_fee_grows_with_the_bins_crossed():
    sol_usdc = pool({0: (0, 500), -1: (0, 10_000)}, variable_fee_control=100_000)

    result = sol_usdc.swap("SOL", 1_000, now=NOW)

    # bin -1: variable fee = ceil(100_000 * (10_000 * 100)^2 / 1e11) = 1_000_000, so 1.1 % in all:
    # fee ceil(494 * 1.1e7 / 1e9) = ceil(5.434) = 6, out floor(488 / 1.01) = 483
    assert (result.amount_out_raw, result.fee_raw) == (983, 12)


def test_the_fee_is_capped_at_ten_percent():
    # accumulator 30_000 (3 bins from the reference): variable fee 1e9 * (3e4 * 100)^2 / 1e11 = 9e10
    volatile = pool(
        {0: (0, 10_000)}, variable_fee_control=10**9, index_reference=3, last_update_timestamp=NOW
    )

    result = volatile.quote("SOL", 1_000, now=NOW)

    assert result.fee_raw == 1_000 * MAX_FEE_RATE // FEE_PRECISION == 100


def test_past_the_filter_period_the_volatility_decays_by_the_reduction_factor():
    sol_usdc = pool(
        {0: (0, 10_000)}, volatility_accumulator=50_000, index_reference=4, last_update_timestamp=100
    )

    sol_usdc.swap("SOL", 1_000, now=130)  # 30 s: the filter period, inside the 600 s decay period

    assert sol_usdc.index_reference == 0  # the active bin
    assert sol_usdc.volatility_reference == 25_000  # 50_000 * 5_000 / 10_000
    assert sol_usdc.volatility_accumulator == 25_000  # + 0 bins from the reference


def test_within_the_filter_period_the_references_stay():
    sol_usdc = pool(
        {0: (0, 10_000)}, volatility_reference=20_000, index_reference=3, last_update_timestamp=100
    )

    sol_usdc.swap("SOL", 1_000, now=110)

    assert (sol_usdc.index_reference, sol_usdc.volatility_reference) == (3, 20_000)
    assert sol_usdc.volatility_accumulator == 50_000  # 20_000 + 3 bins * 10_000


def test_the_accumulator_is_capped():
    sol_usdc = pool(
        {0: (0, 10_000)},
        volatility_reference=20_000,
        index_reference=3,
        last_update_timestamp=100,
        max_volatility_accumulator=15_000,
    )

    sol_usdc.swap("SOL", 1_000, now=110)

    assert sol_usdc.volatility_accumulator == 15_000


def test_past_the_decay_period_the_volatility_is_forgotten():
    sol_usdc = pool(
        {0: (0, 10_000)}, volatility_accumulator=50_000, index_reference=4, last_update_timestamp=100
    )

    sol_usdc.swap("SOL", 1_000, now=700)

    assert (sol_usdc.volatility_reference, sol_usdc.volatility_accumulator) == (0, 0)


def test_more_than_the_bins_hold_is_refused_and_changes_nothing():
    sol_usdc = pool({0: (0, 500), -1: (0, 500), 1: (700, 0)})

    with pytest.raises(InsufficientLiquidity, match="holds too little USDC"):
        sol_usdc.swap("SOL", 2_000, now=NOW)

    assert sol_usdc == pool({0: (0, 500), -1: (0, 500), 1: (700, 0)})


def test_an_input_that_buys_nothing_is_refused():
    with pytest.raises(InsufficientLiquidity, match="buy nothing"):
        pool({0: (0, 10_000)}).quote("SOL", 1, now=NOW)


@pytest.mark.parametrize(("token", "amount"), [("BONK", 1_000), ("SOL", 0)])
def test_a_token_the_pool_does_not_trade_or_no_amount_is_a_value_error(token, amount):
    with pytest.raises(ValueError):
        pool({0: (0, 10_000)}).quote(token, amount, now=NOW)


# -- any pool ---------------------------------------------------------------------------------------


@st.composite
def pools(draw: st.DrawFn, variable_fee: bool = True) -> DlmmPool:
    active_id = draw(st.integers(-200, 200))
    bins = spread_bins(
        active_id,
        amount_x=draw(st.integers(0, 10**12)),
        amount_y=draw(st.integers(0, 10**12)),
        bins_per_side=draw(st.integers(0, 12)),
    )
    return pool(
        bins,
        active_id=active_id,
        bin_step=draw(st.sampled_from([1, 5, 10, 25, 100])),
        base_factor=draw(st.integers(1_000, 20_000)),
        variable_fee_control=draw(st.integers(0, 200_000)) if variable_fee else 0,
        volatility_accumulator=draw(st.integers(0, 350_000)),
        volatility_reference=draw(st.integers(0, 100_000)),
        index_reference=active_id + draw(st.integers(-20, 20)),
        last_update_timestamp=NOW - draw(st.integers(0, 1_000)),
    )


amounts = st.integers(1, 10**12)
tokens = st.sampled_from(["SOL", "USDC"])


@given(pools(), tokens, amounts)
def test_quote_is_what_swap_does_and_changes_nothing(sol_usdc, token_in, amount):
    before = msgspec.structs.replace(sol_usdc, bins=dict(sol_usdc.bins))
    try:
        quoted = sol_usdc.quote(token_in, amount, now=NOW)
    except InsufficientLiquidity:
        with pytest.raises(InsufficientLiquidity):
            sol_usdc.swap(token_in, amount, now=NOW)
        assert sol_usdc == before
        return
    assert sol_usdc == before

    assert sol_usdc.swap(token_in, amount, now=NOW) == quoted


@given(pools(), tokens, amounts)
def test_fees_stay_within_meteoras_bounds_and_the_bins_keep_the_rest(sol_usdc, token_in, amount):
    before = dict(sol_usdc.bins)
    base_fee = sol_usdc.base_fee_rate()
    try:
        result = sol_usdc.swap(token_in, amount, now=NOW)
    except InsufficientLiquidity:
        return

    # at least the base fee; at most 10 %, plus one base unit of rounding up per bin
    assert result.fee_raw * FEE_PRECISION >= amount * min(base_fee, MAX_FEE_RATE)
    assert result.fee_raw * FEE_PRECISION <= amount * MAX_FEE_RATE + len(before) * FEE_PRECISION
    x_in = token_in == "SOL"
    held_in = sum(held[0 if x_in else 1] for held in sol_usdc.bins.values())
    held_out = sum(held[1 if x_in else 0] for held in sol_usdc.bins.values())
    assert held_in == sum(held[0 if x_in else 1] for held in before.values()) + amount - result.fee_raw
    assert held_out == sum(held[1 if x_in else 0] for held in before.values()) - result.amount_out_raw
    assert result.price_impact_bps >= 0


def reference_walk(sol_usdc: DlmmPool, token_in: str, amount: int) -> tuple[int, int]:
    """(amount out, fee) as one bin after the other, at a constant fee rate, with the price as a fraction
    (Meteora's `swap_exact_in_quote_at_bin`): the fee, rounded up, comes off the input; if the rest is more
    than the bin's output is worth (ceil(held / price)), the bin is emptied for that much plus
    ceil(that * rate / (1e9 - rate)) and the rest goes on; else it trades at the bin's price, rounded down."""
    rate = sol_usdc.base_fee_rate()
    x_in = token_in == "SOL"
    left, paid, fees = amount, 0, 0
    for bin_id in sorted(sol_usdc.bins, reverse=x_in):
        held = sol_usdc.bins[bin_id][1 if x_in else 0]
        if left == 0 or held == 0 or (bin_id > sol_usdc.active_id if x_in else bin_id < sol_usdc.active_id):
            continue
        price = Fraction(bin_price(bin_id, sol_usdc.bin_step), ONE)
        out_per_in = price if x_in else 1 / price
        empties_at = math.ceil(held / out_per_in)
        fee = math.ceil(Fraction(left * rate, FEE_PRECISION))
        if left - fee > empties_at:
            fee = math.ceil(Fraction(empties_at * rate, FEE_PRECISION - rate))
            left, paid, fees = left - empties_at - fee, paid + held, fees + fee
        else:
            paid, fees, left = paid + min(math.floor((left - fee) * out_per_in), held), fees + fee, 0
    assert left == 0
    return paid, fees


@given(pools(variable_fee=False), tokens, amounts)
def test_a_swap_across_bins_is_the_sum_of_its_swaps_in_each_bin(sol_usdc, token_in, amount):
    with suppress(InsufficientLiquidity):
        result = sol_usdc.quote(token_in, amount, now=NOW)
        assert (result.amount_out_raw, result.fee_raw) == reference_walk(sol_usdc, token_in, amount)


@given(pools())
def test_a_pool_survives_the_wire(sol_usdc):
    assert msgspec.convert(msgspec.to_builtins(sol_usdc), PoolState) == sol_usdc
    assert msgspec.json.decode(msgspec.json.encode(sol_usdc), type=PoolState) == sol_usdc


# Near the ends of Q64.64's range (bin step 1 and ids below -380_000: prices below 2^-54), rounding makes
# bin prices non-monotone: there the rate ceiling is what the bins hold.
far_off_pools = st.builds(
    lambda active_id, amount_y, width: pool(
        spread_bins(active_id, amount_x=0, amount_y=amount_y, bins_per_side=width),
        active_id=active_id,
        bin_step=1,
    ),
    st.integers(-443_600, -380_000),
    st.integers(1, 10**12),
    st.integers(0, 12),
)


@given(st.one_of(pools(), far_off_pools), tokens, amounts)
def test_no_swap_pays_more_than_its_input_at_the_rate_ceiling(sol_usdc, token_in, amount):
    try:
        quoted = sol_usdc.quote(token_in, amount, now=NOW)
    except InsufficientLiquidity:
        with pytest.raises(InsufficientLiquidity):
            sol_usdc.amount_out(token_in, amount, now=NOW)
        return

    assert sol_usdc.amount_out(token_in, amount, now=NOW) == quoted.amount_out_raw
    assert quoted.amount_out_raw <= amount * sol_usdc.rate_ceiling(token_in, now=NOW)
