"""The router: how one order's input is spread over pools, in percents, as Jupiter's `routePlan` gives it.

`plan_route` quotes every pool for the whole amount, then hands the order out in steps of `percent_step`
percent (1 by default), each step to the pool whose next step pays the most (the highest marginal output).
When every pool's output is concave in its input (a constant product curve is; so are bins whose prices
worsen as they are used up, and a fee that grows with the bins crossed), this greedy allocation is the
best one at that granularity: a step given elsewhere could only pay less than the one it displaced. Floors
of one base unit in the pools' maths make outputs concave only up to that unit, and so the allocation the
best to within a few units per step.

To quote less, the steps are first handed out 5 at a time; by Hochbaum's proximity theorem for concave
allocation problems (D. S. Hochbaum, "Lower and upper bounds for the allocation problem and other
nonlinear optimization problems", Math. of OR 19(2), 1994) some best allocation in single steps gives
every pool at least what the coarse one gave it less 5 steps, so the single steps start from there.

The split is then compared with the best single pool for the whole amount and taken only when it pays
strictly more (by more than `min_split_gain_bps` of the single pool's output, 0 by default: any gain),
so a plan never pays less than the best single pool. Ties are broken the same way every time: more output,
then fewer legs, then the lower pool id.

No split is searched for when none could be taken. Each pool pays at most its input times its
`rate_ceiling` (its best marginal rate, at size zero after the least fee: outputs are concave, and their
floors only lower them), and a split's legs take exactly `amount_in_raw` between them, so no split pays
more than `amount_in_raw` times the pools' best ceiling; when that is no more than the best single pool's
output times (1 + min_split_gain_bps / 10,000), every split fails the comparison above, and the best
single pool is the plan the search would have ended in. Small orders, the common case, end here: the best
single pool pays them nearly its marginal rate.

Quotes are pure maths; each (pool, amount) is quoted once per plan and kept: routing in 1 % steps over `n`
pools of which `u` are used costs at most 20 + 5u + 4n quotes. Only the whole amount's quotes are full
ones (`Pool.quote`); the split's steps need only what each pays (`Pool.amount_out`).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from decimal import Decimal

import msgspec

from domain.pools.base import InsufficientLiquidity, Pool, SwapResult

BPS = 10_000
PERCENT = 100
COARSE = 5  # steps handed out at a time first, before the single steps that refine it


class PoolQuote(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One pool's quote for the whole order, fees and price impact included.

    `pool` is the pool's id. `amount_out_raw`, `fee_raw` (base units of the input token) and
    `price_impact_bps` are None when the pool refuses the whole amount (`InsufficientLiquidity`: it would run
    out of the output token, or pay out nothing): such a pool is reported, and may still take part of the
    order in a split.
    """

    venue: str
    pool: str
    amount_out_raw: int | None
    fee_raw: int | None
    price_impact_bps: Decimal | None

    @property
    def fills(self) -> bool:
        """Whether the pool can take the whole order alone."""
        return self.amount_out_raw is not None


class RouteLeg(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One swap of the plan: `amount_in_raw` of the input token through pool `pool` (its id), paying
    `amount_out_raw` of the output token as quoted. `percent` is the share of the order it was given."""

    venue: str
    pool: str
    percent: int
    amount_in_raw: int
    amount_out_raw: int


class RoutePlan(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Where an order goes: `legs` (largest first; percents sum to 100, amounts in sum to the order's
    exactly), their total `amount_out_raw`, every pool's quote for the whole amount (`quotes`, in the order
    the pools were given) and what the best single pool would pay (`best_single_amount_out_raw`; None when
    no pool can take the whole order alone)."""

    quotes: tuple[PoolQuote, ...]
    legs: tuple[RouteLeg, ...]
    amount_out_raw: int
    best_single_amount_out_raw: int | None

    @property
    def selected_venue(self) -> str:
        """The venue of the largest leg."""
        return self.legs[0].venue


def min_amount_out_raw(amount_out_raw: int, slippage_bps: int) -> int:
    """The least a swap quoted at `amount_out_raw` may pay before the chain refuses it: the quote less
    `slippage_bps` (0..10,000), rounded down.

    Raises `ValueError` for a negative amount or a slippage outside 0..10,000."""
    if amount_out_raw < 0:
        raise ValueError(f"amount_out_raw must be >= 0, not {amount_out_raw}")
    if not 0 <= slippage_bps <= BPS:
        raise ValueError(f"slippage_bps must be within 0..{BPS}, not {slippage_bps}")
    return amount_out_raw * (BPS - slippage_bps) // BPS


def plan_route(
    pools: Sequence[Pool],
    token_in: str,
    amount_in_raw: int,
    now: int,
    *,
    percent_step: int = 1,
    min_split_gain_bps: int = 0,
) -> RoutePlan:
    """The plan paying the most `token_out` for `amount_in_raw` of `token_in` through `pools` (snapshots,
    not changed), at the chain's time `now` (unix seconds).

    A split's leg gets `floor(amount_in_raw * percent / 100)`; the base units this leaves over (fewer than
    the number of legs) go to the largest leg that can take them, so the legs' inputs sum to the order's
    exactly. A pool that refuses a step is full: it takes no further step (so one whose first step would
    pay out nothing takes no part in the split). An order too small to give every leg of its split at least
    one base unit is not split.

    Raises `ValueError` for an amount <= 0, no pools, two pools with one id, a `percent_step` that does not
    divide 100 or a negative `min_split_gain_bps` (and whatever a pool raises for a token it does not trade);
    `InsufficientLiquidity` when the pools together cannot pay out for the whole amount.
    """
    if amount_in_raw <= 0:
        raise ValueError(f"amount_in_raw must be > 0, not {amount_in_raw}")
    if not pools:
        raise ValueError("no pools to route through")
    if len({pool.pool_id for pool in pools}) != len(pools):
        raise ValueError("pool ids must be unique")
    if percent_step <= 0 or PERCENT % percent_step:
        raise ValueError(f"percent_step must divide {PERCENT}, not {percent_step}")
    if min_split_gain_bps < 0:
        raise ValueError(f"min_split_gain_bps must be >= 0, not {min_split_gain_bps}")

    quoter = _Quoter(token_in, now)
    whole = [quoter.whole(pool, amount_in_raw) for pool in pools]
    quotes = tuple(_pool_quote(pool, result) for pool, result in zip(pools, whole, strict=True))
    singles = sorted(
        (
            (result.amount_out_raw, pool)
            for pool, result in zip(pools, whole, strict=True)
            if result is not None
        ),
        key=lambda single: (-single[0], single[1].pool_id),
    )
    best_single = singles[0] if singles else None

    # No split pays more than the whole amount at the pools' best rate ceiling (see above): the split is
    # searched for only when that would beat the best single pool by more than min_split_gain_bps.
    ceiling = max(pool.rate_ceiling(token_in, now) for pool in pools)
    split = None
    if best_single is None or amount_in_raw * ceiling * BPS > best_single[0] * (BPS + min_split_gain_bps):
        split = _split(pools, quoter, amount_in_raw, percent_step)
    if split is not None and len(split) > 1:
        split_out = sum(leg.amount_out_raw for leg in split)
        if best_single is None or split_out * BPS > best_single[0] * (BPS + min_split_gain_bps):
            return RoutePlan(
                quotes=quotes,
                legs=split,
                amount_out_raw=split_out,
                best_single_amount_out_raw=best_single[0] if best_single else None,
            )
    if best_single is None:
        raise InsufficientLiquidity(f"the {len(pools)} pools together cannot pay out for {amount_in_raw}")
    amount_out_raw, pool = best_single
    leg = RouteLeg(
        venue=pool.venue,
        pool=pool.pool_id,
        percent=PERCENT,
        amount_in_raw=amount_in_raw,
        amount_out_raw=amount_out_raw,
    )
    return RoutePlan(
        quotes=quotes, legs=(leg,), amount_out_raw=amount_out_raw, best_single_amount_out_raw=amount_out_raw
    )


class _Quoter:
    """Each pool's output per input amount, computed once (None: the pool cannot pay out for it)."""

    def __init__(self, token_in: str, now: int) -> None:
        self._token_in = token_in
        self._now = now
        self._amounts_out: dict[tuple[str, int], int | None] = {}

    def whole(self, pool: Pool, amount_in_raw: int) -> SwapResult | None:
        """The pool's full quote for the whole order (None: it cannot pay out for it), its output kept."""
        try:
            result = pool.quote(self._token_in, amount_in_raw, self._now)
        except InsufficientLiquidity:
            result = None
        self._amounts_out[pool.pool_id, amount_in_raw] = None if result is None else result.amount_out_raw
        return result

    def amount_out(self, pool: Pool, amount_in_raw: int) -> int | None:
        """What `amount_in_raw` pays out (0 for nothing in), None when the pool cannot pay it."""
        if amount_in_raw == 0:
            return 0
        key = (pool.pool_id, amount_in_raw)
        if key not in self._amounts_out:
            try:
                self._amounts_out[key] = pool.amount_out(self._token_in, amount_in_raw, self._now)
            except InsufficientLiquidity:
                self._amounts_out[key] = None
        return self._amounts_out[key]


def _pool_quote(pool: Pool, result: SwapResult | None) -> PoolQuote:
    return PoolQuote(
        venue=pool.venue,
        pool=pool.pool_id,
        amount_out_raw=result.amount_out_raw if result else None,
        fee_raw=result.fee_raw if result else None,
        price_impact_bps=result.price_impact_bps if result else None,
    )


def _split(
    pools: Sequence[Pool], quoter: _Quoter, amount_in_raw: int, percent_step: int
) -> tuple[RouteLeg, ...] | None:
    """The greedy allocation as legs, largest first; None when the pools cannot take every step, or when a
    leg would get no base unit at all."""
    steps = PERCENT // percent_step
    allocation = None
    if steps % COARSE == 0:
        coarse = _greedy(pools, quoter, amount_in_raw, steps, [0] * len(pools), COARSE)
        if coarse is not None:
            # The proximity theorem (see above): a best allocation in single steps lies above this one.
            below = [max(k - COARSE, 0) for k in coarse[0]]
            allocation = _greedy(pools, quoter, amount_in_raw, steps, below, 1)
    if allocation is None:
        allocation = _greedy(pools, quoter, amount_in_raw, steps, [0] * len(pools), 1)
    if allocation is None:
        return None
    taken, held_out = allocation

    chosen = sorted((i for i in range(len(pools)) if taken[i]), key=lambda i: (-taken[i], pools[i].pool_id))
    amounts = {i: amount_in_raw * taken[i] // steps for i in chosen}
    if 0 in amounts.values():
        return None
    left_over = amount_in_raw - sum(amounts.values())
    if left_over:
        for i in chosen:
            out = quoter.amount_out(pools[i], amounts[i] + left_over)
            if out is not None:
                amounts[i] += left_over
                held_out[i] = out
                break
        else:
            return None
    return tuple(
        RouteLeg(
            venue=pools[i].venue,
            pool=pools[i].pool_id,
            percent=taken[i] * percent_step,
            amount_in_raw=amounts[i],
            amount_out_raw=held_out[i],
        )
        for i in chosen
    )


def _greedy(
    pools: Sequence[Pool], quoter: _Quoter, amount_in_raw: int, steps: int, start: list[int], increment: int
) -> tuple[list[int], list[int]] | None:
    """Hands out the `steps` steps of the order from `start` (steps per pool), `increment` steps at a time,
    each to the pool paying the most for them. Pool i holding k steps takes `amount_in_raw * k // steps`
    (the floor its leg gets). Returns the steps per pool and what each pays for them; None when the pools
    cannot take them all."""
    taken = list(start)
    held = [quoter.amount_out(pool, amount_in_raw * k // steps) for pool, k in zip(pools, taken, strict=True)]
    held_out = [out for out in held if out is not None]
    if len(held_out) != len(pools):
        return None
    # Candidates for the next increment: (-marginal output, opens a new leg, pool id, index, output after
    # it); the smallest is the best: on a tie a pool already in the plan beats a new leg, then the lower id.
    candidates: list[tuple[int, bool, str, int, int]] = []

    def offer_next(i: int) -> None:
        after = quoter.amount_out(pools[i], amount_in_raw * (taken[i] + increment) // steps)
        if after is not None:  # else the pool is full: no further step for it
            heapq.heappush(candidates, (held_out[i] - after, taken[i] == 0, pools[i].pool_id, i, after))

    for i in range(len(pools)):
        offer_next(i)
    for _ in range((steps - sum(taken)) // increment):
        if not candidates:
            return None
        _, _, _, i, after = heapq.heappop(candidates)
        taken[i] += increment
        held_out[i] = after
        offer_next(i)
    return taken, held_out
