"""Routing: the time to plan an order's route over 2 and 8 SOL/USDC pools, for orders of $1.5k to $1.5M.

Each decision is `domain.route_plan.plan_route` as the engine calls it: every pool quoted for the whole
amount, the greedy split in 1 % steps, the comparison with the best single pool. The reference is the
decision the engine made before split routes: quote every pool for the whole amount and take the best one.
Pure computation in this process, one decision at a time; the pools are never changed, so every repeat
plans the same route from nothing (the quotes are kept only within one decision).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench.results import Figure, Measured, Size
from bench.servers import Backends
from domain.pools import CpmmPool
from domain.route_plan import RoutePlan, plan_route

REPEATS = {Size.SMOKE: 20, Size.FULL: 1_000}  # decisions timed per pool count and order size
POOL_COUNTS = (2, 8)
ORDERS_SOL = (10, 1_000, 10_000)  # about $1.5k, $150k, $1.5M at 150 USDC per SOL
GOAL_US = 5_000  # p99 of one decision: a few milliseconds at most, for 8 pools
NOW = 1_764_547_200
# Each pool holds 22,000 SOL against 3.3M USDC (a $1.5k order moves it about 4.5 bps, a $1.5M one by
# tens of percents); their prices differ by a few bps, as arbitrage leaves them.
RESERVE_SOL = 22_000 * 10**9
PRICE_OFFSETS_BPS = (0, 3, -2, 5, -4, 1, -1, 4)


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    repeats = REPEATS[size]
    judged = size is Size.FULL
    figures: list[Figure] = []
    samples: dict[str, list[float]] = {}
    notes = []
    for count in POOL_COUNTS:
        pools = _pools(count)
        for sol in ORDERS_SOL:
            amount = sol * 10**9
            routed = _times_ms(partial(plan_route, pools, "SOL", amount, NOW), repeats)
            single = _times_ms(partial(_best_single, pools, amount), repeats)
            samples.setdefault(f"{count} pools", []).extend(routed)
            for name, quantile in (("p50", _p50), ("p99", _p99)):
                figures.append(
                    Figure(
                        name=f"{count} pools, {sol:,} SOL: decision {name}",
                        value=quantile(routed) * 1_000,
                        unit="µs",
                        reference=f"best single pool only, {name}",
                        reference_value=quantile(single) * 1_000,
                        goal=f"< {GOAL_US // 1_000} ms" if name == "p99" else None,
                        met=quantile(routed) * 1_000 < GOAL_US if judged and name == "p99" else None,
                    )
                )
            notes.append(_route(count, sol, plan_route(pools, "SOL", amount, NOW)))
    return Measured(
        title="Routing decision time",
        settings={
            "decisions per pool count and size": repeats,
            "percent step": 1,
            "pools": "Raydium CPMM SOL/USDC, 22,000 SOL each",
        },
        figures=figures,
        samples=samples,
        notes=[
            "One decision quotes each pool once per amount it considers: about 100 + 2n quotes for n pools "
            "(one per 1 % step, one per pool for its next step, one per pool for the whole order).",
            *notes,
        ],
    )


def _pools(count: int) -> list[CpmmPool]:
    """`count` pools of the same depth around 150 USDC per SOL."""
    return [
        CpmmPool(
            pool_id=f"raydium-cpmm-SOL-USDC-{n + 1}",
            venue="raydium",
            token_x="SOL",
            token_y="USDC",
            decimals_x=9,
            decimals_y=6,
            reserve_x=RESERVE_SOL,
            reserve_y=RESERVE_SOL * 150 * (10_000 + PRICE_OFFSETS_BPS[n]) // 10_000 // 1_000,
        )
        for n in range(count)
    ]


def _best_single(pools: list[CpmmPool], amount_in_raw: int) -> int:
    return max(pool.quote("SOL", amount_in_raw, NOW).amount_out_raw for pool in pools)


def _times_ms(decide: Callable[[], object], repeats: int) -> list[float]:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        decide()
        durations.append((time.perf_counter_ns() - started) / 1e6)
    return durations


def _p50(durations: list[float]) -> float:
    return statistics.median(durations)


def _p99(durations: list[float]) -> float:
    return statistics.quantiles(durations, n=100, method="inclusive")[98]


def _route(count: int, sol: int, plan: RoutePlan) -> str:
    single = plan.best_single_amount_out_raw or 0  # every pool takes these orders alone
    gain_bps = (plan.amount_out_raw - single) * 10_000 / single
    percents = "/".join(str(leg.percent) for leg in plan.legs)
    return (
        f"{count} pools, {sol:,} SOL: {len(plan.legs)} legs ({percents} %), "
        f"{gain_bps:,.1f} bps more than the best single pool"
    )
