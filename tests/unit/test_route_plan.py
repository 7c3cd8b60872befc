"""The router: quotes per pool, the greedy split in percents, never worse than the best single pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.pools import CpmmPool, DlmmPool, InsufficientLiquidity, Pool, SwapResult
from domain.pools.dlmm import spread_bins
from domain.route_plan import RouteLeg, RoutePlan, min_amount_out_raw, plan_route
from market.seed import seed_pools

NOW = 1_764_547_200


def cpmm(pool_id: str, reserve_in: int, reserve_out: int, trade_fee_rate: int = 2_500) -> CpmmPool:
    """A Raydium CPMM pool holding `reserve_in` of IN and `reserve_out` of OUT."""
    return CpmmPool(
        pool_id=pool_id,
        venue="raydium",
        token_x="IN",
        token_y="OUT",
        decimals_x=6,
        decimals_y=6,
        reserve_x=reserve_in,
        reserve_y=reserve_out,
        trade_fee_rate=trade_fee_rate,
    )


def paid(pool: Pool, amount_in_raw: int) -> int | None:
    """What the pool pays for `amount_in_raw` (0 for nothing in); None when it refuses it."""
    if amount_in_raw == 0:
        return 0
    try:
        return pool.quote("IN", amount_in_raw, NOW).amount_out_raw
    except InsufficientLiquidity:
        return None


@dataclass
class Counting:
    """A pool that counts the quotes asked of it."""

    pool: CpmmPool
    quotes: int = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.pool, name)

    def quote(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        self.quotes += 1
        return self.pool.quote(token_in, amount_in_raw, now)


@dataclass
class Searching:
    """A pool as the router saw it before its shortcuts: each step a full quote, and a rate ceiling so high
    that the split is always searched for."""

    pool: Pool

    def __getattr__(self, name: str) -> object:
        return getattr(self.pool, name)

    def amount_out(self, token_in: str, amount_in_raw: int, now: int) -> int:
        return self.pool.quote(token_in, amount_in_raw, now).amount_out_raw

    def rate_ceiling(self, token_in: str, now: int) -> Fraction:
        return Fraction(2**128)  # base units out per base unit in: more than any pool here can hold


def one_bin(pool_id: str, amount_out: int) -> DlmmPool:
    """A Meteora DLMM pool whose one bin holds `amount_out` of OUT at bin 0's price (exactly 1 OUT per IN),
    without fees: it pays 1 OUT per IN until it runs out."""
    return DlmmPool(
        pool_id=pool_id,
        venue="meteora",
        token_x="IN",
        token_y="OUT",
        decimals_x=6,
        decimals_y=6,
        bin_step=10,
        active_id=0,
        bins={0: (0, amount_out)},
        base_factor=0,
        variable_fee_control=0,
    )


def dlmm(
    pool_id: str, active_id: int, amount_out: int, bins: int, bin_step: int, base_factor: int
) -> DlmmPool:
    """A Meteora DLMM pool holding `amount_out` of OUT spread evenly over its active bin and the `bins` below
    (what selling IN walks through), with Meteora's volatility fee on top of the base fee."""
    return DlmmPool(
        pool_id=pool_id,
        venue="meteora",
        token_x="IN",
        token_y="OUT",
        decimals_x=6,
        decimals_y=6,
        bin_step=bin_step,
        active_id=active_id,
        bins=spread_bins(active_id, amount_x=0, amount_y=amount_out, bins_per_side=bins),
        base_factor=base_factor,
        last_update_timestamp=NOW,
    )


def legs(plan: RoutePlan) -> list[tuple[str, int, int, int]]:
    return [(leg.pool, leg.percent, leg.amount_in_raw, leg.amount_out_raw) for leg in plan.legs]


# -- min_amount_out_raw -----------------------------------------------------------------------------


def test_min_amount_out_is_the_quote_less_slippage_rounded_down():
    assert min_amount_out_raw(1_000_000, 50) == 995_000
    assert min_amount_out_raw(999, 1) == 998  # 999 * 9_999 / 10_000 = 998.9001
    assert min_amount_out_raw(123, 0) == 123
    assert min_amount_out_raw(123, 10_000) == 0


@pytest.mark.parametrize(("amount", "slippage"), [(-1, 50), (100, -1), (100, 10_001)])
def test_min_amount_out_refuses_a_negative_amount_or_a_slippage_outside_0_to_10000(amount, slippage):
    with pytest.raises(ValueError):
        min_amount_out_raw(amount, slippage)


# -- known values -----------------------------------------------------------------------------------


def test_a_split_computed_by_hand():
    a = cpmm("a", reserve_in=10_000, reserve_out=20_000)
    b = cpmm("b", reserve_in=10_000, reserve_out=19_000)

    plan = plan_route([a, b], "IN", 4_000, NOW, percent_step=50)

    # Whole order: fee ceil(4_000 * 2_500 / 1e6) = 10, 3_990 in after it.
    #   a: 3_990 * 20_000 // 13_990 = 5_704;   b: 3_990 * 19_000 // 13_990 = 5_418.
    # Halves: fee ceil(2_000 * 0.0025) = 5, 1_995 in.
    #   a: 1_995 * 20_000 // 11_995 = 3_326;   b: 1_995 * 19_000 // 11_995 = 3_160.
    # The first half goes to a (3_326 > 3_160); a's second half pays 5_704 - 3_326 = 2_378 < 3_160: to b.
    assert [(q.pool, q.amount_out_raw, q.fee_raw) for q in plan.quotes] == [
        ("a", 5_704, 10),
        ("b", 5_418, 10),
    ]
    assert legs(plan) == [("a", 50, 2_000, 3_326), ("b", 50, 2_000, 3_160)]
    assert plan.amount_out_raw == 6_486 and plan.best_single_amount_out_raw == 5_704
    assert plan.selected_venue == "raydium"


def test_the_base_units_left_over_go_to_the_largest_leg():
    pools = [cpmm(name, reserve_in=10**12, reserve_out=10**12, trade_fee_rate=0) for name in "ba"]

    plan = plan_route(pools, "IN", 10**11 + 1, NOW)

    # 50/50 of 100_000_000_001: 50_000_000_000 each and 1 left over, for the largest leg (lower id on a tie).
    assert [(leg.pool, leg.percent, leg.amount_in_raw) for leg in plan.legs] == [
        ("a", 50, 50_000_000_001),
        ("b", 50, 50_000_000_000),
    ]


def test_a_small_order_takes_the_best_priced_pool_alone():
    a = cpmm("a", reserve_in=10**12, reserve_out=2 * 10**12)
    b = cpmm("b", reserve_in=10**12, reserve_out=199 * 10**10)  # 0.5% below a

    plan = plan_route([b, a], "IN", 10**9, NOW)

    assert legs(plan) == [("a", 100, 10**9, plan.quotes[1].amount_out_raw)]
    assert plan.amount_out_raw == plan.best_single_amount_out_raw


def test_the_single_pool_is_kept_when_the_split_pays_no_more():
    # Two equal pools and 1 base unit: no split can pay more; the lower pool id wins the tie.
    pools = [cpmm(name, reserve_in=10**6, reserve_out=10**6, trade_fee_rate=0) for name in "ba"]

    plan = plan_route(pools, "IN", 150, NOW)

    assert legs(plan) == [("a", 100, 150, 149)]


def test_a_split_must_gain_more_than_min_split_gain_bps():
    pools = [cpmm(name, reserve_in=10**9, reserve_out=10**9, trade_fee_rate=0) for name in "ab"]
    amount = 10**7  # 1% of each pool: a split gains about 0.5%, 50 bps
    split = plan_route(pools, "IN", amount, NOW)
    gain_bps = (split.amount_out_raw - split.best_single_amount_out_raw) * 10_000 / split.amount_out_raw
    assert len(split.legs) == 2 and 45 < gain_bps < 55

    assert len(plan_route(pools, "IN", amount, NOW, min_split_gain_bps=60).legs) == 1
    assert len(plan_route(pools, "IN", amount, NOW, min_split_gain_bps=40).legs) == 2


def test_a_pool_that_cannot_take_the_whole_order_is_reported_and_still_takes_part_of_it():
    deep = cpmm("deep", reserve_in=10**4, reserve_out=10**4, trade_fee_rate=0)
    shallow = one_bin("shallow", amount_out=500)

    plan = plan_route([deep, shallow], "IN", 1_000, NOW)

    # deep alone: 1_000 * 10_000 // 11_000 = 909. shallow pays 1 per IN, more than deep's marginal price
    # (below 1 from the first unit), until its 500 run out at 50 %; deep takes the other 500:
    # 500 * 10_000 // 10_500 = 476.
    assert [(q.pool, q.fills, q.amount_out_raw, q.fee_raw, q.price_impact_bps) for q in plan.quotes] == [
        ("deep", True, 909, 0, plan.quotes[0].price_impact_bps),
        ("shallow", False, None, None, None),
    ]
    assert legs(plan) == [("deep", 50, 500, 476), ("shallow", 50, 500, 500)]
    assert plan.amount_out_raw == 976 and plan.best_single_amount_out_raw == 909


def test_an_order_the_pools_cannot_fill_together_is_refused():
    pools = [one_bin("a", amount_out=100), one_bin("b", amount_out=100)]

    plan = plan_route(pools, "IN", 200, NOW)
    assert legs(plan) == [("a", 50, 100, 100), ("b", 50, 100, 100)]
    assert plan.best_single_amount_out_raw is None
    with pytest.raises(InsufficientLiquidity):
        plan_route(pools, "IN", 201, NOW)


def test_each_pool_is_quoted_once_per_amount():
    pools = [Counting(cpmm(f"p{n}", reserve_in=10**12, reserve_out=(150 + n) * 10**12)) for n in range(8)]

    plan = plan_route(pools, "IN", 10**12, NOW)

    assert len(plan.legs) == 8
    # 5 steps at a time first: 20 quotes and one per pool for its first; then single steps from 5 steps
    # below that in each pool: 5 quotes per pool used and one per pool for its next step; and the whole.
    assert sum(pool.quotes for pool in pools) <= 20 + 5 * 8 + 4 * 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount_in_raw": 0}, "amount_in_raw"),
        ({"pools": []}, "no pools"),
        ({"pools": [one_bin("a", 10), one_bin("a", 10)]}, "unique"),
        ({"percent_step": 3}, "percent_step"),
        ({"min_split_gain_bps": -1}, "min_split_gain_bps"),
    ],
)
def test_plan_route_refuses_bad_arguments(kwargs, message):
    arguments = {"pools": [one_bin("a", 10)], "token_in": "IN", "amount_in_raw": 1, "now": NOW} | kwargs
    with pytest.raises(ValueError, match=message):
        plan_route(**arguments)


def test_a_plan_encodes_as_the_route_plan_of_the_wire_in_camel_case():
    leg = RouteLeg(venue="raydium", pool="a", percent=100, amount_in_raw=1, amount_out_raw=2)
    plan = RoutePlan(quotes=(), legs=(leg,), amount_out_raw=2, best_single_amount_out_raw=2)

    assert msgspec.json.decode(msgspec.json.encode(plan)) == {
        "quotes": [],
        "legs": [{"venue": "raydium", "pool": "a", "percent": 100, "amountInRaw": 1, "amountOutRaw": 2}],
        "amountOutRaw": 2,
        "bestSingleAmountOutRaw": 2,
    }


# -- properties -------------------------------------------------------------------------------------

pool_shapes = st.tuples(
    st.integers(10**3, 10**15),  # reserve in
    st.integers(10**3, 10**15),  # reserve out
    st.sampled_from([0, 100, 2_500, 10_000, 40_000]),  # trade fee rate, per million
)
# Pools between 1e6 and 1e15 base units of IN, at 1/1000 to 1000 OUT per IN: 1e6 IN buys something in each.
priced_pool_shapes = st.builds(
    lambda reserve_in, out_per_1000_in, fee: (reserve_in, reserve_in * out_per_1000_in // 1_000, fee),
    st.integers(10**6, 10**15),
    st.integers(1, 10**6),
    st.sampled_from([0, 100, 2_500, 10_000, 40_000]),
)


def cpmm_pools(shapes: list[tuple[int, int, int]]) -> list[CpmmPool]:
    return [cpmm(f"p{n}", r_in, r_out, fee) for n, (r_in, r_out, fee) in enumerate(shapes)]


@st.composite
def mixed_pools(draw: st.DrawFn) -> list[Pool]:
    """1 to 6 pools, each a Raydium CPMM or a Meteora DLMM (which may hold too little for the order)."""
    pools: list[Pool] = []
    for n in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            reserve_in, reserve_out, fee = draw(pool_shapes)
            pools.append(cpmm(f"p{n}", reserve_in, reserve_out, fee))
        else:
            pools.append(
                dlmm(
                    f"p{n}",
                    active_id=draw(st.integers(-500, 500)),
                    amount_out=draw(st.integers(10**3, 10**15)),
                    bins=draw(st.integers(0, 60)),
                    bin_step=draw(st.sampled_from([1, 10, 25, 100])),
                    base_factor=draw(st.integers(0, 20_000)),
                )
            )
    return pools


@settings(max_examples=300, deadline=None)
@given(pools=mixed_pools(), amount=st.integers(1, 10**15), step=st.sampled_from([1, 5, 10, 25]))
def test_a_plan_never_pays_less_than_the_best_single_pool_and_its_legs_add_up(pools, amount, step):
    singles = [paid(pool, amount) for pool in pools]
    try:
        plan = plan_route(pools, "IN", amount, NOW, percent_step=step)
    except InsufficientLiquidity:
        assert singles == [None] * len(pools)
        return

    filled = [single for single in singles if single is not None]
    assert [q.amount_out_raw for q in plan.quotes] == singles
    assert plan.best_single_amount_out_raw == max(filled, default=None)
    assert plan.amount_out_raw >= max(filled, default=0)
    assert sum(leg.amount_in_raw for leg in plan.legs) == amount
    assert sum(leg.percent for leg in plan.legs) == 100
    assert all(leg.percent % step == 0 and leg.amount_in_raw > 0 for leg in plan.legs)
    assert sum(leg.amount_out_raw for leg in plan.legs) == plan.amount_out_raw
    by_id = {pool.pool_id: pool for pool in pools}
    assert [leg.amount_out_raw for leg in plan.legs] == [
        paid(by_id[leg.pool], leg.amount_in_raw) for leg in plan.legs
    ]
    assert len({leg.pool for leg in plan.legs}) == len(plan.legs)
    assert [leg.percent for leg in plan.legs] == sorted((leg.percent for leg in plan.legs), reverse=True)
    if len(plan.legs) > 1 and filled:
        assert plan.amount_out_raw > max(filled)


def full_search_plan(
    pools: Sequence[Pool], token_in: str, amount: int, step: int, gain: int
) -> RoutePlan | None:
    """The plan of a full split search over full quotes (None: the pools cannot fill the order)."""
    searching: list[Pool] = [Searching(pool) for pool in pools]
    try:
        return plan_route(searching, token_in, amount, NOW, percent_step=step, min_split_gain_bps=gain)
    except InsufficientLiquidity:
        return None


def routed_plan(pools: Sequence[Pool], token_in: str, amount: int, step: int, gain: int) -> RoutePlan | None:
    try:
        return plan_route(pools, token_in, amount, NOW, percent_step=step, min_split_gain_bps=gain)
    except InsufficientLiquidity:
        return None


# Orders of every size: 1 to 9 times a power of ten up to 1e15 base units.
order_sizes = st.builds(lambda digit, power: digit * 10**power, st.integers(1, 9), st.integers(0, 15))


@settings(max_examples=300, deadline=None)
@given(
    pools=mixed_pools(),
    amount=st.one_of(st.integers(1, 10**15), order_sizes),
    step=st.sampled_from([1, 5, 25]),
    gain=st.sampled_from([0, 1, 5, 50]),
)
def test_the_plan_is_the_one_a_full_search_over_full_quotes_finds(pools, amount, step, gain):
    """Skipping the split search when no split can win, and the steps' bare amounts out, change no plan."""
    assert routed_plan(pools, "IN", amount, step, gain) == full_search_plan(pools, "IN", amount, step, gain)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 1_000),
    token_in=st.sampled_from(["SOL", "USDC"]),
    amount=order_sizes,
    gain=st.sampled_from([0, 5]),
)
def test_on_the_markets_pools_too_the_plan_is_the_one_a_full_search_finds(seed, token_in, amount, gain):
    """The market's SOL/USDC pools, near one price: small orders skip the search, large ones split."""
    pools = [pool for pool in seed_pools(seed) if {pool.token_x, pool.token_y} == {"SOL", "USDC"}]
    assert routed_plan(pools, token_in, amount, 1, gain) == full_search_plan(pools, token_in, amount, 1, gain)


@settings(max_examples=200, deadline=None)
@given(shapes=st.lists(priced_pool_shapes, min_size=2, max_size=5), amount=st.integers(10**6, 10**15))
def test_the_plan_does_not_depend_on_the_order_the_pools_are_given_in(shapes, amount):
    pools = cpmm_pools(shapes)

    assert plan_route(pools, "IN", amount, NOW).legs == plan_route(pools[::-1], "IN", amount, NOW).legs


@settings(max_examples=200, deadline=None)
@given(
    a=priced_pool_shapes,
    b=priced_pool_shapes,
    amount=st.integers(10**6, 10**15),
    step=st.sampled_from([1, 5]),
)
def test_two_pools_split_as_well_as_the_best_allocation_in_steps_of_the_percent_step(a, b, amount, step):
    pools = cpmm_pools([a, b])
    steps = 100 // step

    plan = plan_route(pools, "IN", amount, NOW, percent_step=step)

    allocations = [(amount * k // steps, amount - amount * k // steps) for k in range(steps + 1)]
    outputs = [(paid(pools[0], in_0), paid(pools[1], in_1)) for in_0, in_1 in allocations]
    best = max(out_0 + out_1 for out_0, out_1 in outputs if out_0 is not None and out_1 is not None)
    # Outputs are concave but for rounding: a quote's floors (of the fee, of the output) cost it less than
    # one base unit of input's worth, so each greedy choice may be off by twice that. (Handing out 5 steps
    # at a time without the single steps after them falls short by far more.)
    one_unit = max(pool.reserve_y // pool.reserve_x + 1 for pool in pools)
    assert plan.amount_out_raw >= best - 2 * steps * one_unit


@settings(max_examples=200, deadline=None)
@given(
    reserve=st.integers(10**6, 10**15), fee=st.sampled_from([0, 2_500, 10_000]), share=st.integers(10, 1_000)
)
def test_a_large_order_across_two_equal_pools_splits_about_50_50(reserve, fee, share):
    pools = [cpmm(name, reserve, 150 * reserve, fee) for name in "ab"]
    amount = reserve * share // 100  # 10% to 10x the pool's reserve

    plan = plan_route(pools, "IN", amount, NOW)

    assert [leg.pool for leg in plan.legs] == ["a", "b"]
    assert 45 <= plan.legs[1].percent <= 50


@settings(max_examples=200, deadline=None)
@given(
    amount_out=st.integers(10**9, 10**15),
    bins=st.integers(20, 60),
    bin_step=st.sampled_from([1, 10, 25, 100]),
    base_factor=st.integers(0, 20_000),
    share=st.integers(10, 90),
)
def test_a_large_order_across_two_equal_dlmm_pools_splits_50_50_up_to_a_bin(
    amount_out, bins, bin_step, base_factor, share
):
    pools = [dlmm(name, 0, amount_out, bins, bin_step, base_factor) for name in "ab"]
    amount = amount_out * share // 100  # 10% to 90% of the two pools' liquidity, below 1 OUT per IN

    plan = plan_route(pools, "IN", amount, NOW)

    # Inside a bin the price does not move: where the split stops within the last bins is a tie.
    one_bin_percent = 100 * amount_out / ((bins + 1) * amount)
    assert [leg.pool for leg in plan.legs] == ["a", "b"]
    assert abs(plan.legs[1].percent - 50) <= one_bin_percent + 1


@settings(max_examples=200, deadline=None)
@given(reserve=st.integers(10**9, 10**15), per_mille=st.integers(1, 4))
def test_a_small_order_takes_one_pool_when_another_pays_1_percent_less(reserve, per_mille):
    better = cpmm("b", reserve, 100 * reserve)
    worse = cpmm("a", reserve, 99 * reserve)
    amount = reserve * per_mille // 1_000  # up to 0.4% of the reserve: the price stays above the other pool's

    plan = plan_route([worse, better], "IN", amount, NOW)

    assert legs(plan) == [("b", 100, amount, plan.quotes[1].amount_out_raw)]
