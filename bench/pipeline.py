"""Pipeline: orders per second from POST to confirmed, latencies, and POST beside bare Litestar handlers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import psycopg
import redis

from bench.engine_log import TERMINAL, terminal_times
from bench.http_load import INSTALL_WRK, post_load
from bench.results import Figure, Measured, Size
from bench.servers import STARTUP_TIMEOUT_S, Backends, engine_processes, reference_server, wait_healthy
from tests.processes import wait_for_workers
from tests.settings import MARKET_ORDER

SIZES = {
    # (sustained seconds, warm-up seconds excluded, offered orders/s, seconds at that load, wrk seconds)
    Size.SMOKE: (2, 0.5, 20, 1, 1),
    Size.FULL: (60, 10, 100, 20, 10),
}
# (API processes, worker processes) of the sustained runs; a smoke run checks the one way of running them.
SUSTAINED_SETS = {Size.SMOKE: ((1, 1),), Size.FULL: ((1, 1), (2, 2))}
TOOLS = {"wrk": INSTALL_WRK}
SUBMITTERS = 32  # concurrent closed-loop clients in the sustained run
IN_FLIGHT = 128  # orders at most between their POST and their end, in the sustained run
WRK_CONNECTIONS = 32


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    sustained_s, warmup_s, offered_rate, offered_s, wrk_s = SIZES[size]
    judged = size is Size.FULL
    figures, samples = [], {}
    for apis, workers in SUSTAINED_SETS[size]:
        _reset(backends)
        with engine_processes(
            backends, work_dir / f"sustained-{apis}-{workers}", apis=apis, workers=workers
        ) as engine:
            rate = asyncio.run(sustained_rate(backends, engine.urls, workers, sustained_s, warmup_s))
        figures.append(
            Figure(
                name=f"orders/s POST→confirmed, {apis} API + {workers} worker + 1 projector, {sustained_s} s",
                value=rate,
                unit="orders/s",
                goal="≥ 300 orders/s",
                met=rate >= 300 if judged else None,
            )
        )

    _reset(backends)
    with engine_processes(backends, work_dir / "offered", apis=1, workers=1) as engine:
        post_ms, confirmed_ms = asyncio.run(_offered_load(backends, engine.urls[0], offered_rate, offered_s))
    samples[f"POST→confirmed at {offered_rate}/s"] = confirmed_ms
    samples[f"POST at {offered_rate}/s"] = post_ms
    for label, values in (
        (f"POST→confirmed at {offered_rate} orders/s", confirmed_ms),
        (f"POST at {offered_rate} orders/s", post_ms),
    ):
        for q in (50, 99):
            figures.append(Figure(name=f"{label}, p{q}", value=float(np.percentile(values, q)), unit="ms"))

    _reset(backends)
    # Both servers start at once (each takes seconds to start on a busy machine); wrk loads one at a time.
    with (
        engine_processes(backends, work_dir / "post", apis=1, workers=0, projectors=0) as engine,
        reference_server(backends, work_dir) as reference_url,
    ):
        asyncio.run(wait_healthy(engine.urls))
        ours = post_load(
            f"{engine.urls[0]}/api/orders/execute", MARKET_ORDER, seconds=wrk_s, connections=WRK_CONNECTIONS
        )
        parse = post_load(f"{reference_url}/parse", MARKET_ORDER, seconds=wrk_s, connections=WRK_CONNECTIONS)
        insert = post_load(
            f"{reference_url}/insert", MARKET_ORDER, seconds=wrk_s, connections=WRK_CONNECTIONS
        )
    for loaded in (ours, parse, insert):
        assert loaded.errors == 0 and loaded.non_2xx == 0, f"requests failed under load: {loaded}"
    # Each reference, and the share of its throughput ours must reach, if any.
    comparisons = (
        ("parsing alone", "bare handler, parse only", parse, None),
        ("one INSERT", "bare handler + one INSERT", insert, 0.7),
    )
    figures += [
        *(
            Figure(
                name=f"POST /api/orders/execute throughput, vs {versus}",
                value=ours.per_second,
                unit="req/s",
                reference=reference,
                reference_value=loaded.per_second,
                goal=f"≥ {share}x reference" if share else None,
                met=ours.per_second >= share * loaded.per_second if judged and share else None,
            )
            for versus, reference, loaded, share in comparisons
        ),
        Figure(
            name="POST latency under that load, p99",
            value=ours.p99_us / 1000,
            unit="ms",
            reference="bare handler + one INSERT",
            reference_value=insert.p99_us / 1000,
        ),
    ]
    return Measured(
        title="Pipeline: POST to confirmed",
        settings={
            "sustained_s": sustained_s,
            "warmup_excluded_s": warmup_s,
            "submitters": SUBMITTERS,
            "in_flight": IN_FLIGHT,
            "offered_orders_per_s": offered_rate,
            "offered_s": offered_s,
            "wrk_connections": WRK_CONNECTIONS,
            "wrk_s": wrk_s,
        },
        figures=figures,
        samples=samples,
        notes=[
            f"Sustained: {SUBMITTERS} closed-loop clients (aiohttp, in the bench process, sharing the "
            f"machine's cores) POST for the whole run, with at most {IN_FLIGHT} orders between their POST "
            "and their end (so the rate is one the engine sustains, not its queue growing); the rate "
            "counts OrderConfirmed events appended after the warm-up, read from the log's recorded_at.",
            "Offered load: one POST every 1/rate s whatever the answers; POST→confirmed runs from sending "
            "the POST to the OrderConfirmed event's recorded_at (same machine clock).",
            "POST throughput: wrk, API process alone (no worker or projector), same uvicorn settings "
            "(uvloop, httptools, log level WARNING) as the reference app in bench/reference_app.py.",
        ],
    )


def _reset(backends: Backends) -> None:
    """Start each measurement from an empty log and an empty queue."""
    with psycopg.connect(backends.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE order_events, orders, projection_checkpoints RESTART IDENTITY")
    client = redis.Redis.from_url(backends.redis_url)
    client.flushdb()
    client.close()


async def wait_ready(backends: Backends, urls: Sequence[str], workers: int) -> None:
    await wait_healthy(urls)
    await wait_for_workers(backends.redis_url, workers, STARTUP_TIMEOUT_S)


async def sustained_rate(
    backends: Backends, urls: list[str], workers: int, seconds: float, warmup_s: float
) -> float:
    """Orders confirmed per second while `SUBMITTERS` closed-loop clients POST for `seconds` (after the
    warm-up), round-robin over the APIs at `urls`, keeping at most `IN_FLIGHT` orders between their POST
    and their end: the rate the engine sustains, not how fast its queue can grow."""
    await wait_ready(backends, urls, workers)
    ended_orders = _EndedOrders(backends.database_url)
    sessions = [aiohttp.ClientSession(base_url=url) for url in urls]
    posted = 0
    started = time.time()
    deadline = time.monotonic() + seconds

    async def submit_until_deadline(http: aiohttp.ClientSession) -> None:
        nonlocal posted
        while time.monotonic() < deadline:
            while posted - ended_orders.count >= IN_FLIGHT:
                await ended_orders.changed()
            posted += 1
            async with http.post("/api/orders/execute", json=MARKET_ORDER) as response:
                assert response.status == 201, await response.text()

    try:
        async with ended_orders.followed():
            rotation = itertools.cycle(sessions)
            await asyncio.gather(*(submit_until_deadline(next(rotation)) for _ in range(SUBMITTERS)))
    finally:
        for http in sessions:
            await http.close()
    ended = time.time()
    with psycopg.connect(backends.database_url) as conn:
        (confirmed,) = conn.execute(
            "SELECT count(*) FROM order_events "
            "WHERE type = 'OrderConfirmed' AND recorded_at BETWEEN %s AND %s",
            (
                datetime.fromtimestamp(started + warmup_s).astimezone(),
                datetime.fromtimestamp(ended).astimezone(),
            ),
        ).fetchone()
    return confirmed / (ended - started - warmup_s)


class _EndedOrders:
    """How many orders have ended, read from the log every `POLL_S` (positions past the last one seen, less
    a margin: rows commit out of position order)."""

    POLL_S = 0.02
    MARGIN = 10_000

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.ended: set[str] = set()
        self._changed = asyncio.Event()

    @property
    def count(self) -> int:
        return len(self.ended)

    async def changed(self) -> None:
        await self._changed.wait()

    @contextlib.asynccontextmanager
    async def followed(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._follow())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        last = 0
        async with await psycopg.AsyncConnection.connect(self.database_url, autocommit=True) as conn:
            while True:
                rows = await (
                    await conn.execute(
                        "SELECT order_id, position FROM order_events WHERE position > %s AND type = ANY(%s)",
                        (last - self.MARGIN, list(TERMINAL)),
                    )
                ).fetchall()
                before = len(self.ended)
                self.ended.update(order_id for order_id, _ in rows)
                last = max((position for _, position in rows), default=last)
                if len(self.ended) > before:
                    self._changed.set()
                    self._changed = asyncio.Event()
                await asyncio.sleep(self.POLL_S)


async def _offered_load(
    backends: Backends, url: str, rate: int, seconds: float
) -> tuple[list[float], list[float]]:
    """POSTs at a fixed rate; returns POST latencies and POST→terminal latencies, in ms."""
    await wait_ready(backends, [url], 1)
    sent: dict[str, float] = {}
    post_ms: list[float] = []
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=200)) as http:

        async def submit_at(at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            wall, began = time.time(), time.monotonic()
            response = await http.post("/api/orders/execute", json=MARKET_ORDER)
            post_ms.append((time.monotonic() - began) * 1000)
            assert response.status_code == 201, response.text
            sent[response.json()["orderId"]] = wall

        start = time.monotonic() + 0.2
        await asyncio.gather(*(submit_at(start + n / rate) for n in range(int(rate * seconds))))
    ended = await terminal_times(backends.database_url, list(sent), timeout_s=120)
    return post_ms, [(ended[order_id] - sent[order_id]) * 1000 for order_id in sent]
