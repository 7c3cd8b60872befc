"""The tokens the engine trades, with their precision and the limits a request is checked against."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
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
SNIPER_FUNDING = ("SOL", "USDC")  # what a sniper order may pay with: what new tokens are paired against


@dataclass(frozen=True, slots=True)
class Launch:
    """A token as the chain shows it to a sniper: its decimals, who may still mint it or freeze its holders'
    accounts (None: renounced, or none), and when its first pool was created (None: not tradable yet)."""

    symbol: str
    decimals: int
    mint_authority: str | None
    freeze_authority: str | None
    launched_at: datetime | None


TOKEN_SYMBOL = re.compile(r"[A-Z0-9]{2,10}")  # a token's symbol, as the market announces it
MAX_DECIMALS = 9  # of a launched token: SPL mints allow up to 255; 9 (SOL's) keeps every u64 amount readable


class UnknownToken(KeyError):
    """A symbol that is neither one of the engine's tokens nor a launched one of known precision."""


def launched_token(symbol: str, decimals: int) -> Token:
    """A token launched on the chain after the engine's list was written: its precision is what matters
    (it is bought, never sold, by the orders that name it, so it has no amountIn limit)."""
    return Token(symbol, decimals, reference_usd=Decimal(0), max_amount_in_raw=0)


def token_of(symbol: str, decimals: int | None = None) -> Token:
    """The token of `symbol`, static or launched: one of the engine's own (`TOKENS`, whatever `decimals`
    says), else one launched at runtime, of `decimals` (what its order's TriggerArmed.token_out_decimals, or
    the market's record of it, gives: 0..MAX_DECIMALS). Raises `UnknownToken` for a symbol that is not
    one of the engine's and comes without its decimals, or is no token's symbol (`TOKEN_SYMBOL`)."""
    listed = TOKENS.get(symbol)
    if listed is not None:
        return listed
    if decimals is None or not 0 <= decimals <= MAX_DECIMALS or TOKEN_SYMBOL.fullmatch(symbol) is None:
        raise UnknownToken(symbol)
    return launched_token(symbol, decimals)


def reference_price(token_in: str, token_out: str) -> Decimal:
    """How many whole `token_out` one whole `token_in` is worth at the reference prices."""
    return TOKENS[token_in].reference_usd / TOKENS[token_out].reference_usd
