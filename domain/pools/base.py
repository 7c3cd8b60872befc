"""What every pool offers the router and the market: a pure quote, a swap that changes the pool, a spot price.

Amounts are integers in base units (lamports for SOL). A pool trades one pair, `token_x`/`token_y`, in either
direction. `now` is the chain's clock in unix seconds (Meteora's variable fee decays with time; Raydium's
maths ignores it).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Protocol

import msgspec


class SwapResult(msgspec.Struct, frozen=True, kw_only=True):
    """One exact-in swap through one pool.

    `amount_in_raw`: base units of `token_in` taken (all of what was offered);
    `amount_out_raw`: base units of the other token paid out (rounded down, as the programs do);
    `fee_raw`: the part of `amount_in_raw` kept as the trading fee (rounded up);
    `price_impact_bps`: how far the swap's average price (before fees) falls short of the spot price
    before it, in basis points (0 inside one Meteora bin).
    """

    amount_in_raw: int
    amount_out_raw: int
    fee_raw: int
    price_impact_bps: Decimal


def price_impact_bps(spot_out_per_in: Fraction, amount_in_raw: int, amount_out_raw: int) -> Decimal:
    """`(1 - average price / spot price) * 10_000`, to 0.01 bps (rounded half to even).

    `spot_out_per_in`: base units of the output per base unit of the input before the swap;
    `amount_in_raw`: the input that traded (after the fee: the fee is not part of the price);
    `amount_out_raw`: what it paid. Exact until the final rounding, in integers: what `round` of the
    Fraction gives, without a Fraction's normalising at every operation.
    """
    # In hundredths of a bp: 1e6 * (in * spot - out) / (in * spot), over the spot's denominator.
    numerator = 1_000_000 * (
        amount_in_raw * spot_out_per_in.numerator - amount_out_raw * spot_out_per_in.denominator
    )
    denominator = amount_in_raw * spot_out_per_in.numerator
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    hundredths, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and hundredths % 2):  # half to even
        hundredths += 1
    return Decimal(hundredths).scaleb(-2)


U64_MAX = 2**64 - 1  # what a token account (a vault, a bin's amounts) can hold; the programs check it


class InsufficientLiquidity(Exception):
    """The pool cannot pay out for this input (it would run out of the output token)."""


class Pool(Protocol):
    pool_id: str  # unique on the chain, e.g. "raydium-cpmm-SOL-USDC-1"
    venue: str  # "raydium" or "meteora"
    token_x: str
    token_y: str

    def spot_price(self, token_in: str) -> Decimal:
        """Whole `token_out` per whole `token_in` at the pool's current state, before fees."""
        ...

    def quote(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        """What swapping `amount_in_raw` would give now, without changing the pool.

        Raises `InsufficientLiquidity`; `ValueError` for a token the pool does not trade or an amount <= 0."""
        ...

    def amount_out(self, token_in: str, amount_in_raw: int, now: int) -> int:
        """`quote(token_in, amount_in_raw, now).amount_out_raw`, by the same maths, without working out the
        rest of the quote (the router tries many amounts and needs only this). Raises as `quote`."""
        ...

    def rate_ceiling(self, token_in: str, now: int) -> Fraction:
        """Base units of the output per base unit of `token_in` that no swap now pays more than on average:
        `amount_out(token_in, a, now) <= a * rate_ceiling(token_in, now)` for every amount `a` it accepts,
        rounding included (the best marginal rate after the least fee). Raises `ValueError` for a token the
        pool does not trade."""
        ...

    def swap(self, token_in: str, amount_in_raw: int, now: int) -> SwapResult:
        """Swap, changing the pool's state exactly as `quote` said it would."""
        ...

    def liquidity(self, token: str) -> int:
        """Base units of `token` the pool holds (what sniper orders' `minLiquidity` is checked against).
        Raises `ValueError` for a token the pool does not trade."""
        ...


class PoolFields(msgspec.Struct, kw_only=True, tag_field="kind"):
    """What every pool's state starts with. Pools travel as msgspec Structs (the market persists them and
    serves them at GET /pools; the engine decodes them and routes on its own copy), each class tagged by
    `kind` ("cpmm", "dlmm"); `PoolState` in `domain/pools/__init__.py` is their union."""

    pool_id: str  # unique on the chain, e.g. "raydium-cpmm-SOL-USDC-1"
    venue: str
    token_x: str
    token_y: str
    decimals_x: int
    decimals_y: int
