"""The tokens the engine trades, with the limits a request is checked against."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    decimals: int
    reference_usd: float  # centre of the simulated price walk
    max_amount_in: float  # largest amountIn accepted in one order

    @property
    def smallest_unit(self) -> float:
        return 10.0**-self.decimals


# The documented token list (README "Tokens"): max amounts are roughly $1M of notional each.
TOKENS: dict[str, Token] = {
    token.symbol: token
    for token in (
        Token("SOL", decimals=9, reference_usd=150.0, max_amount_in=10_000),
        Token("USDC", decimals=6, reference_usd=1.0, max_amount_in=1_000_000),
        Token("USDT", decimals=6, reference_usd=1.0, max_amount_in=1_000_000),
        Token("BONK", decimals=5, reference_usd=0.00002, max_amount_in=50_000_000_000),
        Token("JUP", decimals=6, reference_usd=0.8, max_amount_in=1_000_000),
    )
}

NATIVE_SOL = "SOL"


def reference_price(token_in: str, token_out: str) -> float:
    """How many `token_out` one `token_in` is worth at the reference prices."""
    return TOKENS[token_in].reference_usd / TOKENS[token_out].reference_usd
