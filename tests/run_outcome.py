"""What a run of the engine's processes left (the chaos run, the rolling restart): each order's events in
the log, the read side (orders table, active-order cache) and the market's ledger, and the invariants they
must keep whatever happened to the processes meanwhile."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import redis.asyncio as aioredis
import sqlalchemy as sa

from domain.transitions import status_after
from eventstore.base import LOG_START, RecordedEvent
from eventstore.postgres import POSTGRES, PostgresEventStore
from eventstore.signal import InProcessSignal
from migrations.run import upgrade_to_head
from projections.active_orders import RedisActiveOrders
from projections.order_view import fold
from projections.orders import OrdersProjection
from projections.tables import orders
from tests.processes import wait_until_healthy
from tests.services import create_database, drop_database, fresh_redis


def event_store(database_url: str) -> PostgresEventStore:
    return POSTGRES.event_store(POSTGRES.open(database_url), InProcessSignal())


def has_ended(stream: list[RecordedEvent]) -> bool:
    return bool(stream) and status_after(stream[-1].event).is_terminal


async def until_all_ended(database_url: str, order_ids: list[str], timeout_s: float) -> None:
    store = event_store(database_url)
    try:
        async with asyncio.timeout(timeout_s):
            pending = set(order_ids)
            while pending:
                for order_id in list(pending):
                    if has_ended(await store.read_stream(order_id)):
                        pending.discard(order_id)
                await asyncio.sleep(0.2)
    finally:
        await store.engine.dispose()


async def until_projected(database_url: str, redis_url: str, timeout_s: float) -> None:
    """Until the orders table and the Redis cache have applied the whole log (the projector processes')."""
    store = event_store(database_url)
    redis = aioredis.Redis.from_url(redis_url)
    projections = [OrdersProjection(store.engine, POSTGRES), RedisActiveOrders(redis)]
    try:
        async with asyncio.timeout(timeout_s):
            for projection in projections:
                while await store.count_after(await projection.position()):  # noqa: ASYNC110 (other processes)
                    await asyncio.sleep(0.2)
    finally:
        await store.engine.dispose()
        await redis.aclose()


@dataclass
class RunOutcome:
    streams: dict[str, list[RecordedEvent]]  # each accepted order's events
    events: int  # in the whole log
    rows: dict[str, Any]  # the orders table
    cache: dict[str, dict[str, str]]  # the active-order cache
    landed: dict[str, list[dict[str, object]]]  # the market's transactions of each order

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(str(view.status) for view in map(fold, self.streams.values()) if view)

    def cache_differences(self) -> list[str]:
        """The orders the cache holds wrongly (ended, or missing while running), each with what the cache
        has and the order's events as the log has them: what to look at when the invariant fails."""
        running = {order_id for order_id, stream in self.streams.items() if not has_ended(stream)}
        return [
            f"{order_id}: cached {self.cache.get(order_id)}; events "
            + ", ".join(
                f"v{r.version} {type(r.event).__name__} at {r.log_position.transaction_id}:"
                f"{r.log_position.position} by {r.metadata.get('worker', '')}"
                for r in self.streams.get(order_id, [])
            )
            for order_id in sorted(set(self.cache) ^ running)
        ]

    def invariants(self) -> dict[str, bool]:
        streams, rows = self.streams, self.rows
        terminal_counts = {o: sum(status_after(r.event).is_terminal for r in s) for o, s in streams.items()}
        views = {order_id: fold(stream) for order_id, stream in streams.items()}
        hashes = [view.tx_hash for view in views.values() if view and view.tx_hash]
        non_terminal = {order_id for order_id, stream in streams.items() if not has_ended(stream)}
        landed_as_named = all(
            [tx["txHash"] for tx in self.landed[o]] == ([v.tx_hash] if v.status == "confirmed" else [])
            for o, v in views.items()
            if v
        )
        return {
            "every accepted order has exactly one terminal event": all(
                c == 1 for c in terminal_counts.values()
            ),
            "versions are contiguous per order": all(
                [r.version for r in s] == list(range(1, len(s) + 1)) for s in streams.values()
            ),
            "the read table equals the fold of each order's events": set(rows) >= set(streams)
            and all(
                (rows[o].version, rows[o].status, rows[o].tx_hash) == (v.version, v.status, v.tx_hash)
                for o, v in views.items()
                if v
            ),
            "the cache holds exactly the orders that have not ended": set(self.cache) == non_terminal,
            "no txHash appears twice": len(hashes) == len(set(hashes)),
            "the chain landed one swap for each confirmed order, the one it names, and none for the rest": (
                landed_as_named
            ),
        }


async def read_outcome(
    database_url: str, redis_url: str, market_url: str, order_ids: list[str]
) -> RunOutcome:
    async with httpx.AsyncClient(base_url=market_url, timeout=30) as http:
        await wait_until_healthy(http)  # the market may have just been started again
        landed = {
            order_id: (await http.get("/transactions", params={"order": order_id})).json()
            for order_id in order_ids
        }
    store = event_store(database_url)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        streams = {order_id: await store.read_stream(order_id) for order_id in order_ids}
        events = await store.count_after(LOG_START)
        async with store.engine.connect() as conn:
            rows = {row.order_id: row for row in await conn.execute(sa.select(orders))}
        cache = await RedisActiveOrders(redis).all()
    finally:
        await store.engine.dispose()
        await redis.aclose()
    return RunOutcome(streams, events, rows, cache, landed)


class RunSummary(Protocol):
    @property
    def ok(self) -> bool: ...

    def report(self) -> str: ...


# A driver: (database URL, Redis URL, orders, log folder, seed) -> its summary.
Driver = Callable[[str, str, int, Path, "int | None"], Awaitable[RunSummary]]


def run_from_command_line(description: str, name: str, driver: Driver) -> None:
    """`python -m tests.<name> [--orders N] [--seed S]`: `driver` on a database and a Redis database of its
    own (the database dropped afterwards), its logs in a temporary folder; prints its report and exits 0 when
    every invariant held, 1 otherwise."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--seed", type=int, default=None)
    arguments = parser.parse_args()
    sys.exit(asyncio.run(_run(name, driver, arguments.orders, arguments.seed)))


async def _run(name: str, driver: Driver, order_count: int, seed: int | None) -> int:
    database_url = create_database()
    upgrade_to_head(database_url)
    redis_url = fresh_redis()
    try:
        with tempfile.TemporaryDirectory(prefix=f"order-engine-{name}-") as log_dir:
            summary = await driver(database_url, redis_url, order_count, Path(log_dir), seed)
    finally:
        with contextlib.suppress(Exception):
            drop_database(database_url)
    print(summary.report())
    return 0 if summary.ok else 1
