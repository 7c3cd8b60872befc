"""What the chain shows clients, relayed by the engine: each pair's best spot prices now, and the market's
tokens (announced and launched). The monitoring page puts a waiting limit order's limit beside the price that
would fire it, and lists launches as they come."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal, localcontext
from itertools import combinations

import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.params import SkipValidation

from api.errors import MarketUnavailable, error_responses
from domain.pairs import Pair, pair_of
from domain.pools import PoolState
from domain.routing import PRICE_DIGITS
from domain.tokens import TOKENS
from venues.base import VENUE_FAILURES
from venues.chain import Chain, TokenRecord

# The port is a Protocol, which Litestar cannot check an instance against: the value is taken as given.
ChainDependency = NamedDependency[SkipValidation[Chain]]


class PairPrice(msgspec.Struct, rename="camel"):
    """One pair's best spot prices now, before fees and price impact, in the pair's unit (`quote` per
    `base`), as exact decimal strings to 18 significant digits.

    `bid`: the most any pool pays for one base token (what a limit order selling the base, `tokenIn` = base,
    is compared with: it can fire once its limit price is at most `bid`); `ask`: the least any pool asks for
    one base token (an order selling the quote, whose limit is base per quote, can fire once 1 / its limit
    is at least `ask`). `pools`: how many pools of the pair were read."""

    base: str
    quote: str
    unit: str
    bid: str
    ask: str
    pools: int


class Prices(msgspec.Struct, rename="camel"):
    """Every pair of the engine's tokens that has pools, as the chain shows them at `at` (unix ms)."""

    at: int
    pairs: list[PairPrice]


def best_prices(pair: Pair, pools: list[PoolState]) -> PairPrice:
    """`pair`'s best bid and ask over `pools` (at least one), in `quote` per `base`."""
    with localcontext() as context:
        context.prec = PRICE_DIGITS
        bid = +max(pool.spot_price(pair.base) for pool in pools)
        # The best price for buying the base is the most base per quote; as quote per base, its inverse.
        ask = 1 / max(pool.spot_price(pair.quote) for pool in pools)
    return PairPrice(pair.base, pair.quote, pair.unit, _text(bid), _text(ask), len(pools))


def _text(price: Decimal) -> str:
    return f"{price.normalize():f}"


async def _pools_of(chain: Chain, pair: Pair) -> list[PoolState]:
    answers = await asyncio.gather(*(chain.pools(venue, pair.base, pair.quote) for venue in chain.venues))
    return [pool for answer in answers for pool in answer]


@get(
    "/api/prices",
    tags=["market"],
    summary="Each pair's best spot prices now (bid and ask, in the pair's unit)",
    responses=error_responses(503),
)
async def prices(chain: ChainDependency) -> Prices:
    """Reads every pool of every pair of the engine's tokens (SOL, USDC, USDT, BONK, JUP) from the chain;
    `503 market_unavailable` when a venue does not answer (a price from some venues only could mislead)."""
    pairs = [pair_of(a, b) for a, b in combinations(TOKENS, 2)]
    try:
        pools = await asyncio.gather(*(_pools_of(chain, pair) for pair in pairs))
    except VENUE_FAILURES as failure:
        raise MarketUnavailable from failure
    listed = [best_prices(pair, found) for pair, found in zip(pairs, pools, strict=True) if found]
    return Prices(at=int(time.time() * 1000), pairs=listed)


@get(
    "/api/tokens",
    tags=["market"],
    summary="The market's tokens: announced, and launched once they have a pool",
    responses=error_responses(503),
)
async def tokens(chain: ChainDependency) -> list[TokenRecord]:
    """The chain's token records as the market gives them (`GET {MARKET_URL}/tokens`): `symbol`,
    `decimals`, `mintAuthority` and `freezeAuthority` (null: renounced, none), `announcedAt`, `launchedAt`
    and `firstPool` (unix ms; null until the token's first pool). `503 market_unavailable` when the market
    does not answer."""
    try:
        return await chain.tokens()
    except VENUE_FAILURES as failure:
        raise MarketUnavailable from failure
