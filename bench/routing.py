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
from decimal import Decimal
from functools import partial
from pathlib import Path

from bench.results import Figure, Measured, Size
from bench.servers import Backends
from domain.pools import CpmmPool, DlmmPool, Pool
from domain.pools.dlmm import bin_id_at, spread_bins
from domain.route_plan import RoutePlan, plan_route

REPEATS = {Size.SMOKE: 20, Size.FULL: 1_000}  # decisions timed per pool count and order size
POOL_COUNTS = (2, 8)
ORDERS_SOL = (10, 1_000, 10_000)  # about $1.5k, $150k, $1.5M at 150 USDC per SOL
GOAL_US = 5_000  # p99 of one decision: a few milliseconds at most, for 8 pools
NOW = 1_764_547_200
# Each pool holds 22,000 SOL and 3.3M USDC: all of it in a CPMM's reserves (a $1.5k order moves it about
# 4.5 bps, a $1.5M one by tens of percents), spread over 100 bins of 0.1 % on each side of the active one in
# a DLMM (a $1.5k order stays in one bin, a $1.5M one crosses tens of them). Their prices differ by a few
# bps, as arbitrage leaves them.
RESERVE_SOL = 22_000 * 10**9
BIN_STEP = 10
BINS_PER_SIDE = 100
BPS = 10_000
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
            "pools": "SOL/USDC, Raydium CPMM and Meteora DLMM in turn, 22,000 SOL + 3.3M USDC each",
        },
        figures=figures,
        samples=samples,
        notes=[
            "One decision quotes each pool once per amount it considers: at most 20 + 5u + 4n quotes for n "
            "pools of which u take part (see domain/route_plan.py). A DLMM quote walks the bins it crosses.",
            *notes,
        ],
    )


def _pools(count: int) -> list[Pool]:
    """`count` pools around 150 USDC per SOL, every other one a Raydium CPMM, the others Meteora DLMM."""
    pools: list[Pool] = []
    for n in range(count):
        price = Decimal(150) * (BPS + PRICE_OFFSETS_BPS[n]) / BPS
        if n % 2 == 0:
            pools.append(
                CpmmPool(
                    pool_id=f"raydium-cpmm-SOL-USDC-{n // 2 + 1}",
                    venue="raydium",
                    token_x="SOL",
                    token_y="USDC",
                    decimals_x=9,
                    decimals_y=6,
                    reserve_x=RESERVE_SOL,
                    reserve_y=int(RESERVE_SOL * price) // 1_000,
                )
            )
        else:
            active_id = bin_id_at(price, BIN_STEP, 9, 6)
            pools.append(
                DlmmPool(
                    pool_id=f"meteora-dlmm-SOL-USDC-{n // 2 + 1}",
                    venue="meteora",
                    token_x="SOL",
                    token_y="USDC",
                    decimals_x=9,
                    decimals_y=6,
                    bin_step=BIN_STEP,
                    active_id=active_id,
                    bins=spread_bins(
                        active_id, RESERVE_SOL, int(RESERVE_SOL * price) // 1_000, BINS_PER_SIDE
                    ),
                    last_update_timestamp=NOW,
                )
            )
    return pools


def _best_single(pools: list[Pool], amount_in_raw: int) -> int:
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
    legs = f"{len(plan.legs)} leg{'s' if len(plan.legs) > 1 else ''}"
    return (
        f"{count} pools, {sol:,} SOL: {legs} ({percents} %), "
        f"{gain_bps:,.1f} bps more than the best single pool"
    )
