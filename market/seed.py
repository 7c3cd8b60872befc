"""The pools a new market starts with: per pair of the engine's tokens, Raydium CPMM and Meteora DLMM pools
around the reference prices, deep enough that a $1k SOL order moves a pool a few bps and a $1M one by
percents (as SOL/USDC pools on mainnet do, with millions of dollars on each side).

Deterministic from MOCK_SEED: which optional pools exist, their fee tiers and bin steps, and how far each
starts from the reference (a few bps, so that the venues differ from the first quote).
"""

from __future__ import annotations

import itertools
import random
from decimal import Decimal

from domain.pairs import pair_of
from domain.pools import CpmmPool, DlmmPool, PoolState, bin_id_at, spread_bins
from domain.tokens import TOKENS, reference_price

# USD on each side of a pair's first Raydium pool; the other pools of the pair hold a share of it.
SIDE_USD = {
    frozenset({"SOL", "USDC"}): Decimal(5_000_000),
    frozenset({"SOL", "USDT"}): Decimal(2_000_000),
    frozenset({"USDC", "USDT"}): Decimal(10_000_000),
    frozenset({"JUP", "USDC"}): Decimal(2_000_000),
    frozenset({"JUP", "SOL"}): Decimal(1_500_000),
    frozenset({"BONK", "SOL"}): Decimal(1_500_000),
    frozenset({"BONK", "USDC"}): Decimal(1_000_000),
}
DEFAULT_SIDE_USD = Decimal(1_000_000)
# Meteora's pools of a pair: their bin steps (bps), by the most volatile token of the pair. Liquidity is
# spread over the active bin and BINS_PER_SIDE[step] bins on each side (a few percent of price either way),
# DLMM_SHARE of the Raydium pool's depth in all.
BIN_STEPS = {"USDT": (10,), "SOL": (10, 25), "JUP": (25,), "BONK": (80, 25)}
BINS_PER_SIDE = {10: 69, 25: 34, 80: 20}
DLMM_SHARE = Decimal("0.6")
START_SPREAD_BPS = 15  # std-dev of each pool's start away from the reference price
SECOND_POOL_CHANCE = 0.5


def seed_pools(seed: int | None) -> list[PoolState]:
    """Every pool of a new market, by pair (base as token_x, quote as token_y)."""
    rng = random.Random(f"{seed}:pools") if seed is not None else random.Random()
    pools: list[PoolState] = []
    for first, second in itertools.combinations(TOKENS, 2):
        pair = pair_of(first, second)
        side_usd = SIDE_USD.get(frozenset({first, second}), DEFAULT_SIDE_USD)
        pools.append(_cpmm(pair.base, pair.quote, 1, 2_500, side_usd, rng))
        if rng.random() < SECOND_POOL_CHANCE:
            rate = rng.choice((1_000, 4_000))
            pools.append(_cpmm(pair.base, pair.quote, 2, rate, side_usd / 2, rng))
        first_step, *other_steps = _bin_steps(pair.base, pair.quote)
        pools.append(_dlmm(pair.base, pair.quote, 1, first_step, side_usd * DLMM_SHARE, rng))
        if other_steps and rng.random() < SECOND_POOL_CHANCE:
            pools.append(_dlmm(pair.base, pair.quote, 2, other_steps[0], side_usd * DLMM_SHARE / 2, rng))
    return pools


def _bin_steps(base: str, quote: str) -> tuple[int, ...]:
    volatile = [token for token in ("BONK", "JUP", "SOL", "USDT") if token in (base, quote)]
    return BIN_STEPS[volatile[0]]


def _start_price(base: str, quote: str, rng: random.Random) -> Decimal:
    """Whole `quote` per whole `base`: the reference, moved by a few bps."""
    offset_bps = round(rng.gauss(0, START_SPREAD_BPS))
    return reference_price(base, quote) * (1 + Decimal(offset_bps) / 10_000)


def _cpmm(base: str, quote: str, n: int, rate: int, side_usd: Decimal, rng: random.Random) -> CpmmPool:
    decimals_x, decimals_y = TOKENS[base].decimals, TOKENS[quote].decimals
    price = _start_price(base, quote, rng)
    reserve_x_whole = side_usd / TOKENS[base].reference_usd
    return CpmmPool(
        pool_id=f"raydium-cpmm-{base}-{quote}-{n}",
        venue="raydium",
        token_x=base,
        token_y=quote,
        decimals_x=decimals_x,
        decimals_y=decimals_y,
        reserve_x=int(reserve_x_whole.scaleb(decimals_x)),
        reserve_y=int((reserve_x_whole * price).scaleb(decimals_y)),
        trade_fee_rate=rate,
    )


def _dlmm(base: str, quote: str, n: int, bin_step: int, side_usd: Decimal, rng: random.Random) -> DlmmPool:
    decimals_x, decimals_y = TOKENS[base].decimals, TOKENS[quote].decimals
    active_id = bin_id_at(_start_price(base, quote, rng), bin_step, decimals_x, decimals_y)
    amount_x = int((side_usd / TOKENS[base].reference_usd).scaleb(decimals_x))
    amount_y = int((side_usd / TOKENS[quote].reference_usd).scaleb(decimals_y))
    return DlmmPool(
        pool_id=f"meteora-dlmm-{base}-{quote}-{n}",
        venue="meteora",
        token_x=base,
        token_y=quote,
        decimals_x=decimals_x,
        decimals_y=decimals_y,
        bin_step=bin_step,
        active_id=active_id,
        bins=spread_bins(active_id, amount_x, amount_y, BINS_PER_SIDE[bin_step]),
    )
