"""Rebuild: events per second of `projections rebuild orders` over 1,000,000 events.

The log is loaded directly with COPY (loading is not what is measured): real domain events, decided by the
`Order` aggregate and encoded as `SqlEventStore.append` encodes them, for orders that run interleaved as they
do under load, most confirmed at once, some after a failed attempt, a few failed for good, and the last few
still in flight. Then the rebuild runs as the CLI runs it (`OrdersRebuild` over the engine's own store) and
is timed. Its reference is reading the same log alone, in follower order, in the same run: how close the
rebuild gets to the speed of just reading.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg

from bench.results import Figure, Measured, Size
from bench.servers import Backends
from domain.events import Event, OrderSubmitted, RoutingStarted
from domain.order import Order
from domain.pools import PoolState
from domain.retry import RetryPolicy
from domain.route_plan import PoolQuote, RouteLeg, RoutePlan
from domain.routing import route_records
from domain.tokens import TOKENS
from engine.services import Services
from engine.settings import load_settings
from eventstore.base import LOG_START
from market.seed import seed_pools
from market.signatures import base58
from projections.rebuild import BATCH_SIZE, OrdersRebuild

EVENTS = {Size.SMOKE: 5_000, Size.FULL: 1_000_000}
LOAD_TRANSACTIONS = {Size.SMOKE: 5, Size.FULL: 20}  # the log is loaded in this many COPY transactions
IN_FLIGHT = 100  # orders running at once: their events interleave in the log as they do under load
GOAL_EVENTS_PER_S = 100_000
SEED = 20_260_101

# How an order ends: confirmed at once, confirmed after one failed attempt, or failed after every attempt.
OUTCOMES = (("confirmed at once", 0.88), ("retried then confirmed", 0.08), ("failed", 0.04))
POLICY = RetryPolicy(max_attempts=3, base_ms=500)
PAIRS = [(a, b) for a in TOKENS for b in TOKENS if a != b]


def _first_pool_of_each_venue() -> dict[frozenset[str], list[PoolState]]:
    """The market's seeded pools by pair, the first of each venue (they quote every attempt, unmoved)."""
    pools: dict[frozenset[str], list[PoolState]] = {}
    for pool in seed_pools(SEED):
        of_pair = pools.setdefault(frozenset((pool.token_x, pool.token_y)), [])
        if pool.venue not in {other.venue for other in of_pair}:
            of_pair.append(pool)
    return pools


POOLS = _first_pool_of_each_venue()
WORKER = "bench-worker:4242"
COPY_SQL = (
    "COPY order_events (order_id, version, type, data, metadata, recorded_at, schema_version) FROM STDIN"
)
READ_SQL = (  # the follower's order and the columns a rebuild reads, with nothing decoded
    "COPY (SELECT order_id, version, type, data, schema_version, metadata, recorded_at, position,"
    " transaction_id FROM order_events ORDER BY transaction_id, position) TO STDOUT"
)


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    events = EVENTS[size]
    orders, load_s = load_log(backends.database_url, events, LOAD_TRANSACTIONS[size])
    read_s = read_log(backends.database_url)
    applied, rebuild_s, progressed = asyncio.run(rebuild(backends))
    rows, versions = rebuilt_table(backends.database_url)
    # A rebuild that drops or skips anything must fail the bench, not report a speed.
    assert applied == events, f"the rebuild applied {applied} of {events} events"
    assert progressed == applied, f"progress reported {progressed} events, the rebuild {applied}"
    assert rows == orders, f"the rebuilt table has {rows} rows, the log {orders} orders"
    assert versions == events, f"the rebuilt rows' versions add up to {versions}, the log has {events} events"

    rate = events / rebuild_s
    return Measured(
        title="Rebuilding the orders table from the log",
        settings={
            "events": events,
            "orders": orders,
            "load_transactions": LOAD_TRANSACTIONS[size],
            "batch_size": BATCH_SIZE,
        },
        figures=[
            Figure(
                name="rebuild, orders table",
                value=rate,
                unit="events/s",
                reference="reading the log alone",
                reference_value=events / read_s,
                goal=f"≥ {GOAL_EVENTS_PER_S:,} events/s",
                met=rate >= GOAL_EVENTS_PER_S if size is Size.FULL else None,
            )
        ],
        notes=[
            f"{events:,} events of {orders:,} orders ({IN_FLIGHT} in flight at a time, so their events "
            f"interleave in the log), loaded with COPY in {load_s:.1f} s; outcomes: "
            + ", ".join(f"{share:.0%} {outcome}" for outcome, share in OUTCOMES)
            + f" ({POLICY.max_attempts} attempts at most).",
            f"`OrdersRebuild` as `order-engine projections rebuild orders` runs it: {rebuild_s:.2f} s, "
            "shadow table, indexes, final catch-up and swap included. Checked: the rebuilt table has one "
            f"row per order ({rows:,}) and their versions add up to the events in the log.",
            f"Reference: the same columns streamed in follower order with `COPY ... TO STDOUT`, nothing "
            f"decoded ({read_s:.2f} s): the ceiling of reading the log over one connection.",
        ],
    )


def load_log(database_url: str, events: int, transactions: int) -> tuple[int, float]:
    """Append `events` events with COPY in `transactions` transactions; returns the orders and seconds."""
    started = time.monotonic()
    rows = _log_rows(random.Random(SEED), events)
    orders = 0
    per_transaction = -(-events // transactions)
    with psycopg.connect(database_url) as conn:
        for _ in range(transactions):
            with conn.transaction(), conn.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
                for _, row in zip(range(per_transaction), rows, strict=False):
                    orders += row[1] == 1
                    copy.write_row(row)
    with psycopg.connect(database_url, autocommit=True) as conn:  # as autovacuum leaves an old log
        conn.execute("VACUUM (ANALYZE) order_events")
    return orders, time.monotonic() - started


def _log_rows(rng: random.Random, events: int) -> Iterator[tuple[Any, ...]]:
    """The rows `SqlEventStore.append` would store, `IN_FLIGHT` orders interleaved, `events` of them."""
    running: deque[Iterator[tuple[str, int, Event, dict[str, Any]]]] = deque()
    recorded_at = datetime(2026, 1, 1, tzinfo=UTC)
    emitted = 0
    while emitted < events:
        while len(running) < IN_FLIGHT:
            running.append(_order(rng))
        order = running.popleft()
        if (step := next(order, None)) is None:
            continue  # the order has ended: a new one takes its place
        running.append(order)
        order_id, version, event, metadata = step
        recorded_at += timedelta(microseconds=rng.randrange(200, 5_000))
        emitted += 1
        yield (
            order_id,
            version,
            type(event).__name__,
            msgspec.json.encode(msgspec.to_builtins(event)).decode(),
            msgspec.json.encode(metadata).decode(),
            recorded_at,
            event.SCHEMA_VERSION,
        )


def _order(rng: random.Random) -> Iterator[tuple[str, int, Event, dict[str, Any]]]:
    """One order's events, each decided by the `Order` aggregate from the state its events left."""
    order = Order(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    outcome = rng.choices([name for name, _ in OUTCOMES], [share for _, share in OUTCOMES])[0]
    attempts = {"confirmed at once": 1, "retried then confirmed": 2, "failed": POLICY.max_attempts}[outcome]
    token_in, token_out = rng.choice(PAIRS)
    amount_in_raw = int(rng.uniform(0.0001, 0.001) * TOKENS[token_in].max_amount_in_raw)
    pools = POOLS[frozenset((token_in, token_out))]

    def step(event: Event) -> tuple[str, int, Event, dict[str, Any]]:
        order.apply(event)
        metadata: dict[str, Any] = {"correlationId": order.order_id}
        if not isinstance(event, OrderSubmitted):
            attempt = event.attempt if isinstance(event, RoutingStarted) else order.attempt
            metadata |= {"attempt": attempt, "worker": WORKER}
        return order.order_id, order.version, event, metadata

    slippage_bps = rng.choice((30, 50, 100))
    yield step(Order.submit("market", token_in, token_out, slippage_bps, amount_in_raw=str(amount_in_raw)))
    for attempt in range(1, attempts + 1):
        yield step(order.start_attempt())
        quotes, route, _ = route_records(
            single_pool_plan(pools, token_in, amount_in_raw), pools, TOKENS[token_in], TOKENS[token_out]
        )
        yield step(order.select_route(quotes, route, ()))
        yield step(order.build_transaction())
        yield step(order.submit_transaction())
        if attempt < attempts or outcome == "failed":  # the last failed attempt fails the order
            yield step(order.fail_attempt("slippage exceeded at execution", POLICY, rng.random()))
        else:
            (leg,) = route
            paid = leg.amount_out_raw * (10_000 - rng.randrange(20)) // 10_000  # the price moved a little
            yield step(
                order.confirm(base58(rng.randbytes(64)), ((leg.venue, leg.pool, amount_in_raw, paid),))
            )


def single_pool_plan(pools: list[PoolState], token_in: str, amount_in_raw: int) -> RoutePlan:
    """Every pool's quote and the best one's route (the router's split search is not what this measures)."""
    results = [(pool, pool.quote(token_in, amount_in_raw, 0)) for pool in pools]
    best, result = max(results, key=lambda pair: pair[1].amount_out_raw)
    quotes = tuple(
        PoolQuote(
            venue=pool.venue,
            pool=pool.pool_id,
            amount_out_raw=r.amount_out_raw,
            fee_raw=r.fee_raw,
            price_impact_bps=r.price_impact_bps,
        )
        for pool, r in results
    )
    leg = RouteLeg(
        venue=best.venue,
        pool=best.pool_id,
        percent=100,
        amount_in_raw=amount_in_raw,
        amount_out_raw=result.amount_out_raw,
    )
    return RoutePlan(
        quotes=quotes,
        legs=(leg,),
        amount_out_raw=leg.amount_out_raw,
        best_single_amount_out_raw=leg.amount_out_raw,
    )


def read_log(database_url: str) -> float:
    """Seconds to stream the whole log in follower order, as bytes."""
    started = time.monotonic()
    with psycopg.connect(database_url) as conn, conn.cursor() as cursor, cursor.copy(READ_SQL) as copy:
        for _ in copy:
            pass
    return time.monotonic() - started


async def rebuild(backends: Backends) -> tuple[int, float, int]:
    """The rebuild as the CLI runs it; returns the events applied, its seconds and the progress reported."""
    services = Services(load_settings({}, database_url=backends.database_url, redis_url=backends.redis_url))
    progressed = 0

    def advance(n: int) -> None:
        nonlocal progressed
        progressed += n

    try:
        await services.store.count_after(LOG_START)  # as the CLI does, for its progress bar's total
        started = time.monotonic()
        applied = await OrdersRebuild(
            services.db, services.store, services.backend, on_progress=advance
        ).run()
        return applied, time.monotonic() - started, progressed
    finally:
        await services.stop()


def rebuilt_table(database_url: str) -> tuple[int, int]:
    """The live table's rows, and the sum of their versions (each order's version counts its events)."""
    with psycopg.connect(database_url) as conn:
        rows, versions = conn.execute("SELECT count(*), coalesce(sum(version), 0) FROM orders").fetchone()
    return rows, versions
