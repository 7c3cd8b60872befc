"""Burst: 1,000 orders at once on the real venue delays, concurrency and start limit (shorter window)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import numpy as np
import psycopg

from bench.engine_log import TERMINAL, terminal_times
from bench.results import Figure, Measured, Size
from bench.servers import STARTUP_TIMEOUT_S, Backends, engine_processes, wait_healthy
from engine.settings import Settings
from tests.processes import wait_for_workers
from tests.settings import MARKET_ORDER

DEFAULTS = Settings()
# (orders, worker processes, starts allowed per window, window seconds). The default limit is 100 per
# 60 s; the window is shrunk to keep the run short, and there are enough workers (each with the default
# concurrency) that the limit, not the slots, is what holds the orders back.
SIZES = {Size.SMOKE: (20, 2, 10, 0.5), Size.FULL: (1000, 4, 100, 10.0)}
# The venues' times (quote, execution, retry backoff) as a share of the defaults: a smoke run keeps their
# shape (overlapping executions, failures and retries) at a tenth of the wait.
VENUE_TIME = {Size.SMOKE: 0.1, Size.FULL: 1.0}
# Starts are stamped when their event is appended, a moment after the limiter granted them.
STAMP_TOLERANCE_S = 0.1
CONNECTIONS = 200
ANSWER_GOAL_MS = 2000  # the issue's: every POST of the burst answered within 2 s of the first


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    orders, workers, limit, window_s = SIZES[size]
    venue_time = VENUE_TIME[size]
    settings = {
        # The venues as they are by default: delays, failures (and so retries), price moves.
        "mock_quote_delay_ms": round(DEFAULTS.mock_quote_delay_ms * venue_time),
        "mock_execution_delay_ms_min": round(DEFAULTS.mock_execution_delay_ms_min * venue_time),
        "mock_execution_delay_ms_max": round(DEFAULTS.mock_execution_delay_ms_max * venue_time),
        "retry_base_ms": round(DEFAULTS.retry_base_ms * venue_time),
        "mock_failure_rate": DEFAULTS.mock_failure_rate,
        "rate_limit_max": limit,
        "rate_limit_window_s": window_s,
    }
    with engine_processes(backends, work_dir, apis=1, workers=workers, **settings) as engine:
        post_ms, statuses, began = asyncio.run(_burst(backends, engine.urls[0], workers, orders))
        order_ids = [order_id for order_id, status in statuses.items() if status < 300]
        ended = asyncio.run(
            terminal_times(backends.database_url, order_ids, timeout_s=30 + 3 * orders * window_s / limit)
        )
    drained_at = max(ended.values())
    starts, terminals = _log_facts(backends.database_url, order_ids)

    rejected = sum(1 for status in statuses.values() if status >= 300)
    busiest = _busiest_window(starts, window_s - STAMP_TOLERANCE_S)
    span = starts[-1] - starts[0] if len(starts) > 1 else 0.0
    start_rate = (len(starts) - 1) / span if span else 0.0
    limit_rate = limit / window_s
    drain_s = drained_at - began
    ideal_drain_s = orders / limit_rate
    lost = len(order_ids) - len(terminals)
    twice = sum(1 for count in terminals.values() if count != 1)
    judged = size is Size.FULL
    figures = [
        Figure(
            name="POSTs answered 2xx",
            value=orders - rejected,
            unit="of " + str(orders),
            goal="all",
            met=rejected == 0,
        ),
        *(
            Figure(
                name=f"POST answered, after the burst began, {which}",
                value=value,
                unit="ms",
                goal=f"< {ANSWER_GOAL_MS:,} ms",
                met=value < ANSWER_GOAL_MS if judged else None,
            )
            for which, value in (("p99", float(np.percentile(post_ms, 99))), ("last", max(post_ms)))
        ),
        Figure(
            name=f"most starts in any {window_s:g} s window",
            value=busiest,
            unit="starts",
            reference="the limit",
            reference_value=limit,
            goal="≤ limit",
            met=busiest <= limit,
        ),
        Figure(
            name="start rate while draining",
            value=start_rate,
            unit="orders/s",
            reference="limit / window",
            reference_value=limit_rate,
            goal="close to the limit, never above",
        ),
        Figure(
            name="orders without exactly one end",
            value=lost + twice,
            unit="orders",
            goal="0",
            met=lost + twice == 0,
        ),
        Figure(
            name="time to drain",
            value=drain_s,
            unit="s",
            reference="orders / limit rate",
            reference_value=ideal_drain_s,
        ),
    ]
    return Measured(
        title="Burst at the real settings",
        settings={
            "orders": orders,
            "workers": workers,
            "worker_concurrency": DEFAULTS.worker_concurrency,
            "rate_limit": f"{limit} per {window_s:g} s",
            "venue_delays_ms": f"quote {settings['mock_quote_delay_ms']}, execution "
            f"{settings['mock_execution_delay_ms_min']}-{settings['mock_execution_delay_ms_max']}",
            "retry_base_ms": settings["retry_base_ms"],
            "failure_rate": DEFAULTS.mock_failure_rate,
        },
        figures=figures,
        samples={"POST in a 1,000-order burst" if judged else "POST in the burst": post_ms},
        notes=[
            f"All {orders} POSTs are sent at once over {CONNECTIONS} connections (aiohttp, in the bench "
            "process, sharing the machine's cores), each timed from the "
            "burst's start to its answer; starts are each order's "
            "first RoutingStarted, stamped by the log a moment after the limiter granted them, so windows "
            f"are checked {STAMP_TOLERANCE_S * 1000:.0f} ms shorter than the limiter's.",
            "Drain: from the first POST to the last order's terminal event. Failed attempts are retried "
            "after a backoff without taking a new start.",
        ],
    )


async def _burst(
    backends: Backends, url: str, workers: int, orders: int
) -> tuple[list[float], dict[str, int], float]:
    """Fires every POST at once; returns how long after the burst began each was answered (ms)."""
    await wait_healthy([url])
    await wait_for_workers(backends.redis_url, workers, STARTUP_TIMEOUT_S)
    answered_ms: list[float] = []
    statuses: dict[str, int] = {}
    # aiohttp, not httpx: the client shares the machine's cores with the engine, and httpx's CPU per
    # request was a delay of the client's, not the server's. Requests beyond the connections wait in the
    # connector's queue; the connections are opened during the burst, as a burst of new clients would.
    async with aiohttp.ClientSession(
        base_url=url,
        connector=aiohttp.TCPConnector(limit=CONNECTIONS),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as http:

        async def submit(n: int) -> None:
            async with http.post("/api/orders/execute", json=MARKET_ORDER) as response:
                accepted = await response.json(content_type=None)
            answered_ms.append((time.monotonic() - started) * 1000)
            statuses[accepted.get("orderId", f"rejected-{n}")] = response.status

        began, started = time.time(), time.monotonic()
        await asyncio.gather(*(submit(n) for n in range(orders)))
    return answered_ms, statuses, began


def _log_facts(database_url: str, order_ids: list[str]) -> tuple[list[float], dict[str, int]]:
    """Each order's first start time (sorted), and how many terminal events each order has."""
    with psycopg.connect(database_url) as conn:
        starts = conn.execute(
            "SELECT extract(epoch FROM recorded_at) FROM order_events WHERE type = 'RoutingStarted' "
            "AND (data->>'attempt')::int = 1 AND order_id = ANY(%s) ORDER BY recorded_at",
            (order_ids,),
        ).fetchall()
        terminals = conn.execute(
            "SELECT order_id, count(*) FROM order_events WHERE type = ANY(%s) AND order_id = ANY(%s) "
            "GROUP BY order_id",
            (list(TERMINAL), order_ids),
        ).fetchall()
    return [float(at) for (at,) in starts], dict(terminals)


def _busiest_window(times: list[float], window_s: float) -> int:
    """The most times falling in any half-open interval of `window_s` (times sorted)."""
    most, first = 0, 0
    for last, at in enumerate(times):
        while times[first] <= at - window_s:
            first += 1
        most = max(most, last - first + 1)
    return most
