"""The market's own traders, so that prices move while orders wait: a seeded background task.

Each tick (every MARKET_FLOW_INTERVAL_MS; 0 turns it off):
- the reference price of every token (in USD) takes a step of a mean-reverting random walk, in whole bps,
  so prices drift a few percent around domain/tokens.py's references and never run away; USDC is the unit;
- noise traders swap random amounts (log-uniform in USD) into random pools, either way;
- arbitrageurs swap the pools furthest from the reference back to it (the largest swap that does not pass
  it), skipping those within their fee of it, so venues differ a little and converge again.
Every swap is a transaction of the ledger (`Ledger.swap_now`), of no order. The flow trades the pools of the
starting tokens only: a launched token has no reference price to walk or pull back to (its pools move
with the swaps sent to them).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import random
from decimal import Decimal

from domain.pools import CpmmPool, PoolState
from domain.pools.base import InsufficientLiquidity
from domain.tokens import TOKENS
from market.ledger import Ledger

log = logging.getLogger(__name__)

NUMERAIRE = "USDC"
WALK_REVERSION = Decimal("0.95")  # the part of the deviation kept at each step
WALK_STEP_BPS = {"USDT": 1}  # std-dev of a step per token; others WALK_STEP_BPS_DEFAULT
WALK_STEP_BPS_DEFAULT = 8
WALK_LIMIT_BPS = 500
NOISE_TRADES = 2
NOISE_USD = (50, 20_000)  # range of a noise trade's size, drawn log-uniform
ARBITRAGES = 3  # pools pulled back per tick, the furthest first
ARBITRAGE_MIN_BPS = 10  # a pool closer than this (or than its fee) is left alone
SEARCH_STEPS = 40


class MarketFlow:
    def __init__(self, ledger: Ledger, interval_ms: int, seed: int | None) -> None:
        self.ledger = ledger
        self.interval_ms = interval_ms
        self._rng = random.Random(f"{seed}:flow") if seed is not None else random.Random()
        self.deviation_bps = {token: 0 for token in TOKENS}

    def reference_price(self, token_x: str, token_y: str) -> Decimal:
        """Whole `token_y` per whole `token_x` at the walk's reference prices."""
        return self._usd(token_x) / self._usd(token_y)

    def _usd(self, token: str) -> Decimal:
        return TOKENS[token].reference_usd * (1 + Decimal(self.deviation_bps[token]) / 10_000)

    async def run(self) -> None:
        """Tick forever (cancel to stop); a tick that fails (the database away) is logged and skipped."""
        while True:
            await asyncio.sleep(self.interval_ms / 1000)
            try:
                await self.tick()
            except Exception as error:
                log.warning("market flow tick failed: %r", error)

    async def tick(self) -> None:
        self.walk()
        for _ in range(NOISE_TRADES):
            await self.noise_trade()
        await self.arbitrage()

    def walk(self) -> None:
        for token in TOKENS:
            if token == NUMERAIRE:
                continue
            step = round(self._rng.gauss(0, WALK_STEP_BPS.get(token, WALK_STEP_BPS_DEFAULT)))
            moved = int(WALK_REVERSION * self.deviation_bps[token]) + step
            self.deviation_bps[token] = max(-WALK_LIMIT_BPS, min(WALK_LIMIT_BPS, moved))

    def _pools(self) -> list[PoolState]:
        """The pools the flow trades, by id: those of two starting tokens."""
        return [
            pool
            for _, pool in sorted(self.ledger.pools.items())
            if pool.token_x in TOKENS and pool.token_y in TOKENS
        ]

    async def noise_trade(self) -> None:
        pool = self._rng.choice(self._pools())
        token_in = self._rng.choice((pool.token_x, pool.token_y))
        low, high = NOISE_USD
        usd = Decimal(math.exp(self._rng.uniform(math.log(low), math.log(high)))).quantize(Decimal(1))
        amount_raw = int((usd / self._usd(token_in)).scaleb(TOKENS[token_in].decimals))
        if amount_raw > 0:
            await self.ledger.swap_now(pool.pool_id, token_in, amount_raw)

    async def arbitrage(self) -> None:
        gaps = []
        for pool in self._pools():
            target = self.reference_price(pool.token_x, pool.token_y)
            gap_bps = (pool.spot_price(pool.token_x) / target - 1) * 10_000
            if abs(gap_bps) > max(Decimal(ARBITRAGE_MIN_BPS), _fee_bps(pool)):
                gaps.append((abs(gap_bps), pool.pool_id, target))
        for _, pool_id, target in sorted(gaps, reverse=True)[:ARBITRAGES]:
            pool = self.ledger.pools[pool_id]
            # Too dear in token_y: sell token_x into it (its price falls), and the other way round.
            token_in = pool.token_x if pool.spot_price(pool.token_x) > target else pool.token_y
            amount_raw = amount_to_reach(pool, token_in, target, int(self.ledger.now()))
            if amount_raw > 0:
                await self.ledger.swap_now(pool_id, token_in, amount_raw)


def _fee_bps(pool: PoolState) -> Decimal:
    """The pool's fee on a swap now, in bps (at least: Meteora's variable fee grows as bins are crossed)."""
    if isinstance(pool, CpmmPool):
        return Decimal(pool.trade_fee_rate) / 100  # millionths
    return Decimal(pool.total_fee_rate()) / 100_000  # billionths (FEE_PRECISION)


def amount_to_reach(pool: PoolState, token_in: str, target: Decimal, now: int) -> int:
    """The largest `amount_in_raw` of `token_in` after which the pool's spot price (token_y per token_x)
    has not passed `target`; 0 if even one base unit would. Found by growing, then bisection, on copies."""
    selling_x = token_in == pool.token_x

    def passes(amount_raw: int) -> bool:
        trial = copy.deepcopy(pool)
        try:
            trial.swap(token_in, amount_raw, now)
        except InsufficientLiquidity:
            return amount_raw > 1  # nothing for one unit: not passed; for more, the pool would be drained
        price = trial.spot_price(trial.token_x)
        return price < target if selling_x else price > target

    low, high = 0, 1
    while not passes(high):
        low, high = high, high * 16
        if high.bit_length() > 128:
            return low
    for _ in range(SEARCH_STEPS):
        if high - low <= 1:
            break
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle
    return low
