"""The router's results as the decision records them (quotes, legs, pools left out), exact execution prices,
and the retry policy's backoff."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.events import LeftOut, Quote, RouteLeg
from domain.retry import RetryPolicy
from domain.route_plan import PoolQuote, RoutePlan, plan_route
from domain.route_plan import RouteLeg as PlanLeg
from domain.routing import execution_price, route_records
from domain.tokens import TOKENS
from tests.fakes import cpmm_pool

POLICY = RetryPolicy(max_attempts=3, base_ms=500)
SOL, USDC, BONK = TOKENS["SOL"], TOKENS["USDC"], TOKENS["BONK"]
POOLS = [cpmm_pool("raydium", 150), cpmm_pool("meteora", 151)]  # 10,000 SOL deep each, 0.25 % fee
RAYDIUM, METEORA = (pool.pool_id for pool in POOLS)


# -- execution_price ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount_in_raw", "token_in", "amount_out_raw", "token_out", "price"),
    [
        (500_000_000, SOL, 74_910_001, USDC, Decimal("149.820002")),
        (1, SOL, 1, USDC, Decimal(1000)),  # 0.000001 USDC for 0.000000001 SOL
        (1_000_000, USDC, 6_666_666, SOL, Decimal("0.006666666")),
        (3 * 10**9, SOL, 1_000_000, USDC, Decimal("0.333333333333333333")),  # 18 significant digits
        (3 * 10**9, SOL, 2_000_000, USDC, Decimal("0.666666666666666667")),  # the last digit rounded
        (10**6, USDC, 4_999_999_999, BONK, Decimal("49999.99999")),
    ],
)
def test_execution_price_is_whole_tokens_out_per_whole_token_in_exactly(
    amount_in_raw, token_in, amount_out_raw, token_out, price
):
    result = execution_price(amount_in_raw, token_in, amount_out_raw, token_out)
    assert result == price
    assert isinstance(result, Decimal)


# -- route_records --------------------------------------------------------------------------------------


def test_a_small_order_records_every_pools_quote_and_one_leg_through_the_best():
    plan = plan_route(POOLS, "SOL", 500_000_000, 0)
    quotes, legs, left_out = route_records(plan, POOLS, SOL, USDC)

    # amount_out = floor(in_after_fee * reserve_out / (reserve_in + in_after_fee)), fee = 0.25 % rounded up
    fee = 1_250_000
    raydium_out = (500_000_000 - fee) * 1_500_000_000_000 // (10_000 * 10**9 + 500_000_000 - fee)
    meteora_out = (500_000_000 - fee) * 1_510_000_000_000 // (10_000 * 10**9 + 500_000_000 - fee)
    assert quotes == (
        Quote(
            venue="raydium",
            pool=RAYDIUM,
            price=Decimal(150),
            fee_bps=Decimal(25),
            effective_price=execution_price(500_000_000, SOL, raydium_out, USDC),
            amount_out=USDC.value(raydium_out),
            amount_out_raw=raydium_out,
            price_impact_bps=plan.quotes[0].price_impact_bps,
        ),
        Quote(
            venue="meteora",
            pool=METEORA,
            price=Decimal(151),
            fee_bps=Decimal(25),
            effective_price=execution_price(500_000_000, SOL, meteora_out, USDC),
            amount_out=USDC.value(meteora_out),
            amount_out_raw=meteora_out,
            price_impact_bps=plan.quotes[1].price_impact_bps,
        ),
    )
    assert (raydium_out, meteora_out) == (74_808_768, 75_307_494)
    assert quotes[1].effective_price == Decimal("150.614988")
    assert legs == (
        RouteLeg(
            venue="meteora",
            pool=METEORA,
            percent=100,
            amount_in=Decimal("0.5"),
            amount_in_raw=500_000_000,
            amount_out=Decimal("75.307494"),
            amount_out_raw=75_307_494,
        ),
    )
    assert left_out == ()


def test_a_split_records_each_legs_amounts_both_ways():
    plan = plan_route(POOLS, "SOL", 2_000 * 10**9, 0)
    _, legs, _ = route_records(plan, POOLS, SOL, USDC)

    assert len(legs) == 2
    assert sum(leg.percent for leg in legs) == 100
    assert sum(leg.amount_in_raw for leg in legs) == 2_000 * 10**9
    for recorded, planned in zip(legs, plan.legs, strict=True):
        assert (recorded.venue, recorded.pool, recorded.percent) == (
            planned.venue,
            planned.pool,
            planned.percent,
        )
        assert (recorded.amount_in_raw, recorded.amount_out_raw) == (
            planned.amount_in_raw,
            planned.amount_out_raw,
        )
        assert recorded.amount_in.scaleb(9) == recorded.amount_in_raw
        assert recorded.amount_out.scaleb(6) == recorded.amount_out_raw


def test_a_pool_that_cannot_take_the_whole_order_is_left_out_of_the_quotes_and_says_why():
    plan = RoutePlan(
        quotes=(
            PoolQuote(
                venue="raydium", pool=RAYDIUM, amount_out_raw=None, fee_raw=None, price_impact_bps=None
            ),
            PoolQuote(
                venue="meteora",
                pool=METEORA,
                amount_out_raw=75_307_494,
                fee_raw=1_250_000,
                price_impact_bps=Decimal("0.5"),
            ),
        ),
        legs=(
            PlanLeg(
                venue="meteora",
                pool=METEORA,
                percent=100,
                amount_in_raw=500_000_000,
                amount_out_raw=75_307_494,
            ),
        ),
        amount_out_raw=75_307_494,
        best_single_amount_out_raw=75_307_494,
    )
    quotes, _, left_out = route_records(plan, POOLS, SOL, USDC)

    assert [q.pool for q in quotes] == [METEORA]
    assert left_out == (LeftOut(venue="raydium", reason=f"{RAYDIUM}: too little liquidity for the order"),)


def test_a_fee_that_is_not_a_whole_basis_point_is_recorded_exactly():
    # 0.25 % of 1,001 base units rounds up to 3: 3 * 10,000 / 1,001 bps
    plan = plan_route(POOLS, "SOL", 1_001, 0)
    quotes, _, _ = route_records(plan, POOLS, SOL, USDC)
    assert plan.quotes[0].fee_raw == 3
    assert quotes[0].fee_bps == Decimal("29.9700299700299700")


# -- RetryPolicy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3])
@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999])
def test_delay_stays_within_twenty_percent_of_the_exponential_centre(attempt, draw):
    centre = 500 * 2 ** (attempt - 1)
    delay = POLICY.delay_ms(attempt, draw)
    assert 0.8 * centre <= delay <= 1.2 * centre, (attempt, draw, delay)


@pytest.mark.parametrize(("attempt", "low", "mid", "high"), [(1, 400, 500, 600), (2, 800, 1000, 1200)])
def test_jitter_draw_spans_the_band_from_low_to_high(attempt, low, mid, high):
    assert POLICY.delay_ms(attempt, 0.0) == low
    assert POLICY.delay_ms(attempt, 0.5) == mid
    assert POLICY.delay_ms(attempt, 0.999) == pytest.approx(high, abs=1)


def test_delay_doubles_per_attempt_at_the_same_draw():
    delays = [POLICY.delay_ms(attempt, 0.5) for attempt in (1, 2, 3, 4)]
    assert delays == [500, 1000, 2000, 4000]


def test_delay_returns_whole_milliseconds():
    assert isinstance(POLICY.delay_ms(1, 0.123), int)


def test_delay_follows_the_base():
    assert RetryPolicy(max_attempts=3, base_ms=50).delay_ms(2, 0.5) == 100
    assert RetryPolicy(max_attempts=3, base_ms=0).delay_ms(3, 0.999) == 0


@pytest.mark.parametrize(("failed_attempt", "allowed"), [(1, True), (2, True), (3, False), (4, False)])
def test_may_retry_only_while_attempts_remain(failed_attempt, allowed):
    assert POLICY.may_retry(failed_attempt) is allowed


def test_a_single_attempt_policy_never_retries():
    assert not RetryPolicy(max_attempts=1, base_ms=500).may_retry(1)
