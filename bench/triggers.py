"""Triggers: how soon a limit order fires once the price crosses its limit, beside 10,000 armed orders; what
an armed order costs in memory; how soon a sniper order buys a token after its launch.

The engine runs as processes (`market`, `api`, two `worker`s with their trigger watchers at the default
TRIGGER_INTERVAL_MS, a `projector`) on PostgreSQL + Redis, venue delays 0. Trigger latency: one limit order of
0.01 SOL armed 0.2 % above the best SOL/USDC price (through the API), then every SOL/USDC pool pushed 1 % up
with outside swaps (POST /swaps, MARKET_SCRIPTING); from the moment the first swap is sent to the order's
`TriggerFired` in the log (its `recorded_at`); the pools are pushed back before the next one. Measured with no
other order armed (the reference), then again beside the armed orders, whose limits (10 % above the price
and more) none of these moves reaches. Memory: the trigger index's Redis keys (MEMORY USAGE) and the in-memory
index of the embedded mode (built in this process from the same log, traced with tracemalloc), per armed
order; the workers' resident memory. Launches: a token announced (POST /tokens), a sniper order of 0.1 SOL
armed for it, then its first pool created (POST /tokens/{symbol}/pools: 50 SOL against 1e9 tokens); from the
token's `launchedAt` on the chain to the order's `TriggerFired` and `OrderConfirmed`.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import tracemalloc
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import psutil
import psycopg
from redis.asyncio import Redis

from bench.results import Figure, Measured, Size
from bench.servers import STARTUP_TIMEOUT_S, Backends, EngineProcesses, engine_processes, wait_healthy
from engine.services import Services
from engine.settings import Settings, load_settings
from eventstore.base import LOG_START
from projections.trigger_index import ARMED_KEY, EXPIRY_KEY, PAIRS_KEY, PREFIX, InMemoryTriggerIndex
from tests.armed_orders import arm_limit_orders
from tests.market_moves import best_spot, push_sol_price
from tests.processes import until, wait_for_workers

SIZES = {
    # (orders armed beside the measured ones, trigger latency samples with none and with them armed, launches)
    Size.SMOKE: (300, 5, 2),
    Size.FULL: (10_000, 100, 20),
}
INTERVAL_MS = Settings().trigger_interval_ms  # the watchers run at the engine's default
GOAL_P99_MS = INTERVAL_MS + 100  # a round's wait at most, and its work
SOL_USDC_KEY = f"{PREFIX}:limit:SOL>USDC"
INDEX_KEYS = (PAIRS_KEY, ARMED_KEY, EXPIRY_KEY, SOL_USDC_KEY)
MOVE = Decimal("0.01")
LAUNCH_POOL = {
    "venue": "raydium",
    "quoteToken": "SOL",
    "amountRaw": str(10**15),
    "quoteAmountRaw": str(50 * 10**9),
}
POLL_S = 0.01  # how often the log is read for an order's event: its `recorded_at` is what is measured
WAIT_S = 60  # for one order's step, at most
TERMINAL = ("OrderConfirmed", "OrderFailed")


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    armed, samples, launches = SIZES[size]
    with engine_processes(backends, work_dir, apis=1, workers=2, market_scripting=True) as engine:
        return asyncio.run(_measure(backends, engine, armed, samples, launches, judged=size is Size.FULL))


async def _measure(
    backends: Backends, engine: EngineProcesses, armed: int, samples: int, launches: int, *, judged: bool
) -> Measured:
    assert engine.market_url is not None
    await wait_healthy(engine.urls)
    await wait_for_workers(backends.redis_url, 2, STARTUP_TIMEOUT_S)
    services = Services(load_settings({}, database_url=backends.database_url, redis_url=backends.redis_url))
    redis = Redis.from_url(backends.redis_url)
    try:
        async with (
            httpx.AsyncClient(base_url=engine.urls[0], timeout=30) as api,
            httpx.AsyncClient(base_url=engine.market_url, timeout=30) as market,
            await psycopg.AsyncConnection.connect(backends.database_url, autocommit=True) as db,
        ):
            bench = _Bench(api, market, db, services)
            workers_before = _rss_mib(engine.pids["worker"])
            alone = [await bench.trigger_latency_ms() for _ in range(samples)]
            log_before = await _log_bytes(db)
            redis_before = await _index_bytes(redis)
            spot = await best_spot(market)
            limits = [
                str((spot * (Decimal("1.1") + Decimal(n) / 10**5)).quantize(Decimal("0.0001")))
                for n in range(armed)
            ]
            arming_started = time.perf_counter()
            await arm_limit_orders(services.store, limits, Decimal("0.01"))
            arming_s = time.perf_counter() - arming_started
            await bench.until_indexed(armed)
            redis_per_order = (await _index_bytes(redis) - redis_before) / armed
            log_per_order = (await _log_bytes(db) - log_before) / armed
            in_memory_per_order = await _in_memory_index_bytes(services) / armed
            beside = [await bench.trigger_latency_ms() for _ in range(samples)]
            workers_after = _rss_mib(engine.pids["worker"])
            sniped = [await bench.snipe_ms(f"BENCH{n}") for n in range(launches)]
    finally:
        await redis.aclose()
        await services.stop()

    fired_ms, confirmed_ms = [s[0] for s in sniped], [s[1] for s in sniped]
    figures = [
        Figure(
            name=f"trigger latency p50, {armed:,} armed",
            value=_p(beside, 50),
            unit="ms",
            reference="none armed, p50",
            reference_value=_p(alone, 50),
        ),
        Figure(
            name=f"trigger latency p99, {armed:,} armed",
            value=_p(beside, 99),
            unit="ms",
            reference="none armed, p99",
            reference_value=_p(alone, 99),
            goal=f"< {GOAL_P99_MS} ms (TRIGGER_INTERVAL_MS + 100)",
            met=_p(beside, 99) < GOAL_P99_MS if judged else None,
        ),
        Figure(
            name="Redis trigger index per armed order",
            value=redis_per_order,
            unit="bytes",
            reference="its two events in the PostgreSQL log",
            reference_value=log_per_order,
        ),
        Figure(
            name="in-memory trigger index per armed order (embedded mode)",
            value=in_memory_per_order,
            unit="bytes",
            reference="the Redis index",
            reference_value=redis_per_order,
        ),
        Figure(
            name=f"worker resident memory, {armed:,} armed",
            value=workers_after,
            unit="MiB",
            reference="before they were armed",
            reference_value=workers_before,
        ),
        Figure(
            name="sniper: launch to TriggerFired, p50",
            value=_p(fired_ms, 50),
            unit="ms",
            reference="limit order's trigger latency p50",
            reference_value=_p(beside, 50),
        ),
        Figure(
            name="sniper: launch to OrderConfirmed, p50",
            value=_p(confirmed_ms, 50),
            unit="ms",
            reference="launch to TriggerFired, p50",
            reference_value=_p(fired_ms, 50),
        ),
    ]
    return Measured(
        title="Triggers: limit and sniper orders",
        settings={
            "armed": armed,
            "latency samples": samples,
            "launches": launches,
            "workers": 2,
            "TRIGGER_INTERVAL_MS": INTERVAL_MS,
        },
        figures=figures,
        samples={
            "trigger, none armed": alone,
            f"trigger, {armed:,} armed": beside,
            "launch to TriggerFired": fired_ms,
            "launch to OrderConfirmed": confirmed_ms,
        },
        notes=[
            f"{armed:,} limit orders armed through the command handler in {arming_s:.1f} s "
            f"({armed / arming_s:,.0f} orders/s), indexed by the projector process.",
            "A watcher reads only the pairs with armed orders and asks the index for the orders a price can "
            "have reached: the armed orders the price is far from cost it nothing per round.",
            f"Trigger latency is at most a watcher's interval ({INTERVAL_MS} ms) plus its round's work; two "
            "watchers whose rounds fall at different moments halve the wait on average.",
            f"Sniper launch to buy: max {max(fired_ms):,.0f} ms to TriggerFired, "
            f"{max(confirmed_ms):,.0f} ms to OrderConfirmed.",
        ],
    )


class _Bench:
    def __init__(
        self,
        api: httpx.AsyncClient,
        market: httpx.AsyncClient,
        db: psycopg.AsyncConnection,
        services: Services,
    ) -> None:
        self.api, self.market, self.db, self.index = api, market, db, services.trigger_index

    async def trigger_latency_ms(self) -> float:
        """One limit order armed just above the price, the price pushed past it: from the push to its
        `TriggerFired`. Waits for the order's end, and pushes the price back."""
        spot = await best_spot(self.market)
        limit = (spot * Decimal("1.002")).quantize(Decimal("0.0001"))
        order_id = await self._submit(
            {
                "orderType": "limit",
                "tokenIn": "SOL",
                "tokenOut": "USDC",
                "amountIn": "0.01",
                "slippageBps": 50,
                "limitPrice": str(limit),
            }
        )
        await until(
            lambda: self._in_index(("SOL", "USDC"), limit, order_id), WAIT_S, "the order indexed", POLL_S
        )
        moved_at = time.time()
        await push_sol_price(self.market, MOVE)
        fired_at = await self._recorded_at(order_id, ("TriggerFired",))
        await self._recorded_at(order_id, TERMINAL)
        await push_sol_price(self.market, -MOVE / (1 + MOVE))  # back where it was
        return (fired_at - moved_at) * 1000

    async def snipe_ms(self, symbol: str) -> tuple[float, float]:
        """A token announced, a sniper order armed for it, its first pool created: from the token's launch on
        the chain to the order's `TriggerFired`, and to its `OrderConfirmed`."""
        token = {"symbol": symbol, "decimals": 6, "mintAuthority": None, "freezeAuthority": None}
        response = await self.market.post("/tokens", json=token)
        assert response.status_code == 201, response.text
        order_id = await self._submit(
            {
                "orderType": "sniper",
                "tokenIn": "SOL",
                "tokenOut": symbol,
                "amountIn": "0.1",
                "slippageBps": 100,
            }
        )
        await until(
            lambda: self._in_index(("SOL", symbol), Decimal(0), order_id),
            WAIT_S,
            "the sniper indexed",
            POLL_S,
        )
        response = await self.market.post(f"/tokens/{symbol}/pools", json=LAUNCH_POOL)
        assert response.status_code == 201, response.text
        launched_at = (await self.market.get(f"/tokens/{symbol}")).json()["launchedAt"] / 1000
        fired_at = await self._recorded_at(order_id, ("TriggerFired",))
        confirmed_at = await self._recorded_at(order_id, ("OrderConfirmed",))
        return (fired_at - launched_at) * 1000, (confirmed_at - launched_at) * 1000

    async def until_indexed(self, count: int) -> None:
        async def indexed() -> bool:
            return await self.index.count() >= count

        await until(indexed, 600, f"{count:,} orders indexed", POLL_S)

    async def _submit(self, body: dict[str, object]) -> str:
        response = await self.api.post("/api/orders/execute", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["orderId"])

    async def _in_index(self, pair: tuple[str, str], price: Decimal, order_id: str) -> bool:
        return order_id in await self.index.crossed(pair, price)

    async def _recorded_at(self, order_id: str, types: tuple[str, ...]) -> float:
        """When the order's first event of `types` was appended (epoch s), once it has been."""
        found: list[datetime] = []

        async def appended() -> bool:
            rows = await self.db.execute(
                "SELECT recorded_at FROM order_events WHERE order_id = %s AND type = ANY(%s) "
                "ORDER BY version LIMIT 1",
                (order_id, list(types)),
            )
            found[:] = [row[0] for row in await rows.fetchall()]
            return bool(found)

        await until(appended, WAIT_S, f"{'/'.join(types)} of {order_id}", POLL_S)
        return found[0].timestamp()


async def _index_bytes(redis: Redis) -> int:
    """What the trigger index's keys take in Redis (exactly: every element counted)."""
    sizes = [await redis.memory_usage(key, samples=0) for key in INDEX_KEYS]
    return sum(size or 0 for size in sizes)


async def _log_bytes(db: psycopg.AsyncConnection) -> int:
    row = await (await db.execute("SELECT pg_total_relation_size('order_events')")).fetchone()
    assert row is not None
    return int(row[0])


async def _in_memory_index_bytes(services: Services) -> int:
    """What the embedded mode's in-memory index holds once built from the whole log (tracemalloc)."""
    batches = []
    after = LOG_START
    while batch := await services.store.read_all(after, 5_000):
        batches.append(batch)
        after = batch[-1].log_position
    index = InMemoryTriggerIndex()
    tracemalloc.start()
    try:
        position = LOG_START
        for batch in batches:
            await index.apply(position, batch)
            position = batch[-1].log_position
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return held


def _rss_mib(pids: list[int]) -> float:
    """The mean resident memory of the processes, in MiB."""
    return statistics.mean(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


def _p(samples: list[float], percent: int) -> float:
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[percent - 1]
