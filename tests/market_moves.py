"""Moving the market's SOL price on purpose, as an outside trader does (POST /swaps, MARKET_SCRIPTING): for
tests and benchmarks of limit orders, which fire when the price reaches them."""

from __future__ import annotations

import copy
import time
from decimal import Decimal

import httpx

from domain.pools import PoolState
from venues.chain_wire import pool_from_wire


async def sol_usdc_pools(market: httpx.AsyncClient, prefix: str = "") -> list[PoolState]:
    """The SOL/USDC pools as the market at `market` (its API under `prefix`: "/market" embedded) has them."""
    answer = await market.get(f"{prefix}/pools", params={"tokenIn": "SOL", "tokenOut": "USDC"})
    assert answer.status_code == 200, answer.text
    return [pool_from_wire(wire) for wire in answer.json()]


async def best_spot(market: httpx.AsyncClient, prefix: str = "") -> Decimal:
    """USDC per SOL at the best SOL/USDC pool, before fees."""
    return max(pool.spot_price("SOL") for pool in await sol_usdc_pools(market, prefix))


async def push_sol_price(market: httpx.AsyncClient, up: Decimal, prefix: str = "") -> None:
    """Swap into every SOL/USDC pool until each pool's spot price has moved by `up` (a fraction of it; below
    0 moves it down): buying SOL with USDC pushes the price up, selling SOL brings it down."""
    now = int(time.time())
    token_in = "USDC" if up > 0 else "SOL"
    for pool in await sol_usdc_pools(market, prefix):
        target = pool.spot_price("SOL") * (1 + up)

        def reaches(amount: int, pool: PoolState = pool, target: Decimal = target) -> bool:
            moved = copy.deepcopy(pool)
            moved.swap(token_in, amount, now)
            return moved.spot_price("SOL") >= target if up > 0 else moved.spot_price("SOL") <= target

        # A USDC, or a thousandth of a SOL, doubled until it moves the pool far enough; then halved back to
        # within 1 % of the least amount that does, so that a move and its opposite cancel out.
        low, high = 0, 10**6
        while not reaches(high):
            low, high = high, high * 2
        while high - low > high // 100:
            middle = (low + high) // 2
            low, high = (low, middle) if reaches(middle) else (middle, high)
        response = await market.post(
            f"{prefix}/swaps", json={"poolId": pool.pool_id, "tokenIn": token_in, "amountInRaw": str(high)}
        )
        assert response.status_code == 200, response.text
