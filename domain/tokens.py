"""The tokens the engine trades, with their precision and the limits a request is checked against."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.amounts import shown, to_decimal


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    decimals: int  # base units per token: 10**decimals
    reference_usd: Decimal  # where the simulated market seeds its pools and centres its reference price
    max_amount_in_raw: int  # largest amountIn accepted in one order, in base units

    def value(self, raw: int) -> Decimal:
        """`raw` base units as whole tokens, exactly."""
        return to_decimal(raw, self.decimals)

    def show(self, raw: int) -> str:
        """`0.5 SOL`."""
        return f"{shown(raw, self.decimals)} {self.symbol}"


def _token(symbol: str, decimals: int, reference_usd: str, max_amount_in: int) -> Token:
    return Token(symbol, decimals, Decimal(reference_usd), max_amount_in * 10**decimals)


# The documented token list (README "Tokens"): max amounts are roughly $1M of notional each.
TOKENS: dict[str, Token] = {
    token.symbol: token
    for token in (
        _token("SOL", 9, "150", max_amount_in=10_000),
        _token("USDC", 6, "1", max_amount_in=1_000_000),
        _token("USDT", 6, "1", max_amount_in=1_000_000),
        _token("BONK", 5, "0.00002", max_amount_in=50_000_000_000),
        _token("JUP", 6, "0.8", max_amount_in=1_000_000),
    )
}

NATIVE_SOL = "SOL"


def reference_price(token_in: str, token_out: str) -> Decimal:
    """How many whole `token_out` one whole `token_in` is worth at the reference prices."""
    return TOKENS[token_in].reference_usd / TOKENS[token_out].reference_usd
