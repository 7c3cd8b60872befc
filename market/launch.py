"""A new pool for a token, as the venues' programs initialise one: the simulated counterpart of a launch.

- Raydium CPMM (raydium-io/raydium-cp-swap on GitHub, programs/cp-swap/src/instructions/initialize.rs):
  the creator's two deposits become the vaults, so the reserves are the deposits; `validate_supply` refuses
  an empty side, and the program mints `isqrt(amount_0 * amount_1)` LP tokens of which it locks
  10^lp_decimals (lp_decimals: the larger of the two mints' decimals), so deposits whose liquidity is below
  that cannot make a pool. The standard 0.25 % fee config.
- Meteora DLMM (`initialize_lb_pair`, then the creator's liquidity in the "spot" shape): the active bin is
  the one holding the initial price (`bin_id_at`), and the deposits are spread evenly over it and
  LAUNCH_BINS_PER_SIDE bins either side (`spread_bins`: the new token above, the quote token below), at a
  bin step of LAUNCH_BIN_STEP, as new tokens' pools are made.

The initial price is `quote_amount / amount` in whole tokens (whole quote token per whole new token). The
new token is the pool's token_x, the quote token its token_y, so prices read in the quote token.
"""

from __future__ import annotations

import math
from collections.abc import Container
from fractions import Fraction

from domain.pools import CpmmPool, DlmmPool, PoolState, bin_id_at, spread_bins
from domain.pools.dlmm import MONOTONE_PRICES, bin_price
from venues.chain import TokenRecord

RAYDIUM_LAUNCH_FEE_RATE = 2_500  # millionths: Raydium's standard config, 0.25 %
LAUNCH_BIN_STEP = 80  # bps between bins: wide, for a new token's moves
LAUNCH_BINS_PER_SIDE = 20  # bins either side of the active one: about 17 % of price each way at step 80
KINDS = {"raydium": "cpmm", "meteora": "dlmm"}


class RefusedPool(ValueError):
    """Deposits the venue's program would refuse, or a pairing the chain cannot make (a quote token that
    is not tradable, a token paired with itself): `field` names the request's field at fault (`amountRaw`,
    `quoteToken`), the message starts with it and says which rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


def pool_id_for(venue: str, token: str, quote: str, taken: Container[str]) -> str:
    """`raydium-cpmm-PEPE-SOL-1`, numbered past the pools of that venue and pair that exist."""
    n = 1
    while f"{venue}-{KINDS[venue]}-{token}-{quote}-{n}" in taken:
        n += 1
    return f"{venue}-{KINDS[venue]}-{token}-{quote}-{n}"


def initial_price(token: TokenRecord, quote: TokenRecord, amount_raw: int, quote_amount_raw: int) -> Fraction:
    """Whole `quote` per whole `token` of the deposits, exactly."""
    return Fraction(quote_amount_raw, amount_raw) * Fraction(10) ** (token.decimals - quote.decimals)


def new_pool(
    venue: str,
    pool_id: str,
    token: TokenRecord,
    quote: TokenRecord,
    amount_raw: int,
    quote_amount_raw: int,
) -> PoolState:
    """The pool `venue`'s program would create from deposits of `amount_raw` base units of `token` and
    `quote_amount_raw` of `quote` (both above 0). Raises RefusedPool for deposits the program refuses;
    KeyError for a venue other than raydium or meteora."""
    if token.symbol == quote.symbol:
        raise RefusedPool("quoteToken", f"a pool pairs two tokens, not {token.symbol} with itself")
    if amount_raw <= 0 or quote_amount_raw <= 0:
        raise RefusedPool("amountRaw", "both deposits must be above 0 (the program refuses an empty side)")
    if KINDS[venue] == "cpmm":
        return _cpmm(pool_id, token, quote, amount_raw, quote_amount_raw)
    return _dlmm(pool_id, token, quote, amount_raw, quote_amount_raw)


def _cpmm(
    pool_id: str, token: TokenRecord, quote: TokenRecord, amount_raw: int, quote_amount_raw: int
) -> CpmmPool:
    liquidity = math.isqrt(amount_raw * quote_amount_raw)
    locked = 10 ** max(token.decimals, quote.decimals)
    if liquidity < locked:
        raise RefusedPool(
            "amountRaw",
            f"Raydium's program refuses these deposits: their liquidity, isqrt(amountRaw * quoteAmountRaw) = "
            f"{liquidity}, is below the {locked} LP base units it locks; deposit more",
        )
    return CpmmPool(
        pool_id=pool_id,
        venue="raydium",
        token_x=token.symbol,
        token_y=quote.symbol,
        decimals_x=token.decimals,
        decimals_y=quote.decimals,
        reserve_x=amount_raw,
        reserve_y=quote_amount_raw,
        trade_fee_rate=RAYDIUM_LAUNCH_FEE_RATE,
    )


def _dlmm(
    pool_id: str, token: TokenRecord, quote: TokenRecord, amount_raw: int, quote_amount_raw: int
) -> DlmmPool:
    price = initial_price(token, quote, amount_raw, quote_amount_raw)
    try:
        active_id = bin_id_at(price, LAUNCH_BIN_STEP, token.decimals, quote.decimals)
        edges = (
            bin_price(active_id - LAUNCH_BINS_PER_SIDE, LAUNCH_BIN_STEP),
            bin_price(active_id + LAUNCH_BINS_PER_SIDE, LAUNCH_BIN_STEP),
        )
    except ValueError:
        edges = (0, 0)  # beyond the bins' range altogether
    if not all(edge in MONOTONE_PRICES for edge in edges):
        raise RefusedPool(
            "amountRaw",
            f"the initial price, {quote_amount_raw}/{amount_raw} base units, is outside what Meteora's bins "
            f"hold (2^-29 to 2^28 base units of {quote.symbol} per base unit of {token.symbol})",
        )
    return DlmmPool(
        pool_id=pool_id,
        venue="meteora",
        token_x=token.symbol,
        token_y=quote.symbol,
        decimals_x=token.decimals,
        decimals_y=quote.decimals,
        bin_step=LAUNCH_BIN_STEP,
        active_id=active_id,
        bins=spread_bins(active_id, amount_raw, quote_amount_raw, LAUNCH_BINS_PER_SIDE),
    )
