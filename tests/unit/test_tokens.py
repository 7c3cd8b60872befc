"""The token of a symbol, static or launched: one lookup for every reader of amounts and prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.tokens import TOKENS, UnknownToken, token_of


@pytest.mark.parametrize("symbol", list(TOKENS))
def test_the_engine_s_own_tokens_are_theirs_whatever_decimals_are_given(symbol):
    assert token_of(symbol) is token_of(symbol, 0) is TOKENS[symbol]


@pytest.mark.parametrize(
    ("symbol", "decimals", "raw", "whole"),
    [("PEPE", 6, 1, "0.000001"), ("Z0", 0, 7, "7"), ("WIF9", 9, 10**9, "1")],
)
def test_a_launched_token_has_the_decimals_its_launch_gave_and_no_amount_in_limit(
    symbol, decimals, raw, whole
):
    token = token_of(symbol, decimals)
    assert (token.symbol, token.decimals, token.max_amount_in_raw) == (symbol, decimals, 0)
    assert token.value(raw) == Decimal(whole)
    assert token.show(raw) == f"{whole} {symbol}"


@pytest.mark.parametrize(
    ("symbol", "decimals"),
    [("PEPE", None), ("PEPE", 10), ("PEPE", -1), ("pepe", 6), ("P", 6), ("PEPE-SOL", 6), ("ABCDEFGHIJK", 6)],
)
def test_a_symbol_neither_listed_nor_launched_with_its_decimals_is_unknown(symbol, decimals):
    with pytest.raises(UnknownToken):
        token_of(symbol, decimals)
