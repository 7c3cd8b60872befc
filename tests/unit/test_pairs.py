"""Prices read in one orientation per pair (quote per base), whichever way the swap goes."""

from __future__ import annotations

from decimal import Decimal
from itertools import permutations

import pytest

from domain.pairs import QUOTE_PREFERENCE, Pair, pair_of, readable
from domain.tokens import TOKENS


def test_every_token_has_a_place_in_the_quote_preference():
    assert sorted(QUOTE_PREFERENCE) == sorted(TOKENS)


@pytest.mark.parametrize(
    ("token_in", "token_out", "pair"),
    [
        ("SOL", "USDC", Pair("SOL", "USDC")),
        ("USDC", "SOL", Pair("SOL", "USDC")),
        ("USDC", "BONK", Pair("BONK", "USDC")),
        ("JUP", "USDT", Pair("JUP", "USDT")),
        ("USDT", "USDC", Pair("USDT", "USDC")),
        ("SOL", "JUP", Pair("JUP", "SOL")),
        ("BONK", "JUP", Pair("BONK", "JUP")),
    ],
)
def test_a_swap_and_its_reverse_trade_on_one_pair(token_in, token_out, pair):
    assert pair_of(token_in, token_out) == pair_of(token_out, token_in) == pair


def test_every_pair_of_tokens_has_one_base_and_one_quote():
    for token_in, token_out in permutations(TOKENS, 2):
        pair = pair_of(token_in, token_out)
        assert {pair.base, pair.quote} == {token_in, token_out}
        assert pair == pair_of(token_out, token_in)


def test_the_issue_s_price_reads_in_usdc_per_sol_both_ways():
    pair = pair_of("USDC", "SOL")
    assert pair.unit == "USDC per SOL"
    # 0.006602 SOL per USDC (a USDC → SOL swap) is 151.469... USDC per SOL, exactly 1 / 0.006602.
    assert pair.price("USDC", Decimal("0.006602")) == 1 / Decimal("0.006602")
    assert pair.show("USDC", Decimal("0.006602")) == "151.469 USDC per SOL"
    assert pair.show("SOL", Decimal("151.469")) == "151.469 USDC per SOL"


@pytest.mark.parametrize(
    ("token_in", "token_out", "pair"),
    [
        ("SOL", "PEPE", Pair("PEPE", "SOL")),  # a token launched at runtime is the base against any listed
        ("USDC", "WIF", Pair("WIF", "USDC")),
        ("BONK", "A1", Pair("A1", "BONK")),
        ("PEPE", "WIF", Pair("WIF", "PEPE")),  # two launched ones: the first alphabetically is the quote
    ],
)
def test_a_launched_token_pairs_with_any_other_in_one_orientation(token_in, token_out, pair):
    assert pair_of(token_in, token_out) == pair_of(token_out, token_in) == pair
    assert pair.show(token_in, Decimal(2)) in {f"2 {pair.unit}", f"0.5 {pair.unit}"}


def test_a_price_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        pair_of("SOL", "USDC").price("USDC", Decimal(0))


def test_a_token_does_not_pair_with_itself():
    with pytest.raises(ValueError, match="two tokens"):
        pair_of("SOL", "SOL")


@pytest.mark.parametrize(
    ("price", "text"),
    [
        (Decimal("151.61234"), "151.612"),
        (Decimal("0.00002000001"), "0.00002"),
        (Decimal("0.000000133333333"), "0.000000133333"),
        (Decimal("50123.4"), "50123.4"),
        (Decimal("7500000"), "7500000"),
        (Decimal("1.5"), "1.5"),
    ],
)
def test_a_price_reads_without_exponent_or_trailing_zeros(price, text):
    assert readable(price) == text


@pytest.mark.parametrize("funding", ["SOL", "USDC"])
def test_a_launched_token_is_the_base_priced_in_what_buys_it(funding):
    """A sniper order's token is none of the engine's: its pair reads in the token it trades against."""
    for token_in, token_out in ((funding, "PEPE"), ("PEPE", funding)):
        pair = pair_of(token_in, token_out)
        assert (pair.base, pair.quote, pair.unit) == ("PEPE", funding, f"{funding} per PEPE")
