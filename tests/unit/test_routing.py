"""Routing and retry maths: quotes after fees and impact, choosing a venue, slippage floors, backoff."""

from __future__ import annotations

import pytest

from domain.events import Quote
from domain.retry import RetryPolicy
from domain.routing import best_quote, min_amount_out, quote_for

POLICY = RetryPolicy(max_attempts=3, base_ms=500)


def quote(venue: str, amount_out: float, fee_bps: int) -> Quote:
    return Quote(venue=venue, price=150.0, fee_bps=fee_bps, effective_price=amount_out, amount_out=amount_out)


# -- quote_for --------------------------------------------------------------------------------------


def test_quote_takes_fee_and_price_impact_off_the_spot_price():
    q = quote_for("raydium", price=150.0, fee_bps=25, price_impact=0.001, amount_in=2.0)

    expected_price = 150.0 * (1 - 0.0025) * (1 - 0.001)
    assert q.venue == "raydium"
    assert q.price == 150.0
    assert q.fee_bps == 25
    assert q.effective_price == pytest.approx(expected_price, rel=1e-12)
    assert q.amount_out == pytest.approx(2.0 * expected_price, rel=1e-12)


def test_quote_without_impact_is_the_fee_adjusted_price():
    q = quote_for("meteora", price=2.0, fee_bps=20, price_impact=0.0, amount_in=1000.0)
    assert q.effective_price == pytest.approx(1.996, rel=1e-12)
    assert q.amount_out == pytest.approx(1996.0, rel=1e-12)


def test_quote_amount_out_scales_with_amount_in():
    small = quote_for("meteora", price=150.0, fee_bps=20, price_impact=0.0005, amount_in=1.0)
    large = quote_for("meteora", price=150.0, fee_bps=20, price_impact=0.0005, amount_in=10.0)
    assert large.amount_out == pytest.approx(10 * small.amount_out, rel=1e-12)


# -- best_quote -------------------------------------------------------------------------------------


def spot(venue: str, price: float, fee_bps: int) -> Quote:
    """A quote for 1 unit with no price impact: only price and fee differ."""
    return quote_for(venue, price=price, fee_bps=fee_bps, price_impact=0.0, amount_in=1.0)


def chosen_in_either_order(a: Quote, b: Quote) -> Quote:
    first, second = best_quote([a, b]), best_quote([b, a])
    assert first is second, "the choice must not depend on the order quotes arrive in"
    return first


def test_raydium_wins_when_its_better_price_outweighs_its_higher_fee():
    raydium, meteora = spot("raydium", 151.0, 25), spot("meteora", 150.0, 20)
    assert raydium.amount_out > meteora.amount_out  # 150.6225 > 149.7
    assert chosen_in_either_order(raydium, meteora) is raydium


def test_meteora_wins_at_equal_price_with_its_lower_fee():
    raydium, meteora = spot("raydium", 150.0, 25), spot("meteora", 150.0, 20)
    assert chosen_in_either_order(raydium, meteora) is meteora


def test_higher_spot_price_loses_when_its_fee_leaves_less_out():
    pricier, cheaper_fee = spot("raydium", 150.2, 25), spot("meteora", 150.0, 5)
    assert pricier.price > cheaper_fee.price
    assert pricier.amount_out < cheaper_fee.amount_out  # 149.82 < 149.925
    assert chosen_in_either_order(pricier, cheaper_fee) is cheaper_fee


def test_price_impact_counts_when_choosing():
    deep = quote_for("raydium", price=150.0, fee_bps=25, price_impact=0.0001, amount_in=100.0)
    shallow = quote_for("meteora", price=150.0, fee_bps=20, price_impact=0.01, amount_in=100.0)
    assert best_quote([deep, shallow]) is deep


def test_tie_on_amount_out_goes_to_the_lower_fee():
    # "raydium" sorts after "meteora", so a name tie-break alone would pick raydium.
    raydium = quote("raydium", amount_out=100.0, fee_bps=25)
    meteora = quote("meteora", amount_out=100.0, fee_bps=20)

    assert best_quote([raydium, meteora]) is meteora
    assert best_quote([meteora, raydium]) is meteora


def test_best_quote_accepts_a_tuple_and_a_single_quote():
    only = quote("raydium", amount_out=1.0, fee_bps=25)
    assert best_quote((only,)) is only


@pytest.mark.parametrize("empty", [[], ()], ids=["list", "tuple"])
def test_best_quote_of_no_quotes_raises_value_error(empty):
    with pytest.raises(ValueError):
        best_quote(empty)


# -- min_amount_out ---------------------------------------------------------------------------------


def test_min_amount_out_allows_the_slippage_below_the_quote():
    q = quote("meteora", amount_out=200.0, fee_bps=20)
    assert min_amount_out(q, 50) == pytest.approx(199.0, rel=1e-12)


@pytest.mark.parametrize(("slippage_bps", "expected"), [(1, 99.99), (100, 99.0), (5000, 50.0)])
def test_min_amount_out_at_other_slippages(slippage_bps, expected):
    q = quote("meteora", amount_out=100.0, fee_bps=20)
    assert min_amount_out(q, slippage_bps) == pytest.approx(expected, rel=1e-12)


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
