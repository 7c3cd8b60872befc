"""Worker processes that go away: stopped cleanly (SIGTERM, SIGINT) or killed outright (SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis
import websockets
from prometheus_client.parser import text_string_to_metric_families

from domain.events import OrderConfirmed, OrderFailed
from tests.harness import Engine, engine_settings, running_engine
from tests.processes import environment, role_processes, wait_for_workers
from workers.queue import CONSUMER_GROUP, QUEUE

# The recovery sweep and the claim's lease at their defaults, so that only a hand-back can make an order
# move on quickly. The market's transactions take a few seconds to land: the orders are in flight when the
# first worker goes, and the second finishes them well before the lease would have run out.
# No grace period: a stopped worker stops its orders where they are (instead of taking each to its next
# event, the landing 10 s away; tests/integration/test_graceful_shutdown.py covers that).
DEFAULT_RECOVERY = {
    "recovery_interval_s": 10,
    "recovery_grace_s": 30,
    "worker_lease_s": 30,
    "shutdown_grace_s": 0,
}
# Long enough for the second worker process to start while the first holds the orders (a few seconds on a
# busy 2-core machine), short beside the 30 s lease a resumed order must not wait for.
LANDING = {"mock_execution_delay_ms_min": 10_000, "mock_execution_delay_ms_max": 10_000}


def worker_id(process) -> str:
    return f"{socket.gethostname()}:{process.pid}"


async def wait_until_in_flight(engine: Engine, order_id: str) -> None:
    url = f"{engine.ws_base}/api/orders/execute?orderId={order_id}"
    async with websockets.connect(url) as stream:
        while msgspec.json.decode(await stream.recv())["status"] != "submitted":
            pass


async def consumers(redis_url: str) -> set[str]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        return {c["name"].decode() for c in await client.xinfo_consumers(QUEUE, CONSUMER_GROUP)}
    finally:
        await client.aclose()


async def queue_depth(engine: Engine) -> float:
    text = (await engine.http.get("/metrics")).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    (sample,) = families["order_engine_queue_depth"].samples
    return sample.value


def error_lines(log: Path) -> list[str]:
    return [
        line
        for line in log.read_text().splitlines()
        if '"level": "error"' in line or "Traceback" in line or "CancelledError" in line
    ]


@dataclass
class TwoWorkers:
    engine: Engine
    first: subprocess.Popen  # holds the orders
    second: subprocess.Popen
    order_ids: list[str]


@contextlib.asynccontextmanager
async def orders_in_the_first_of_two_workers(postgres_url, redis_url, tmp_path) -> AsyncIterator[TwoWorkers]:
    """Three orders in the middle of their execution by a first worker process, and a second one idle."""
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend, **LANDING), worker=False) as engine:
        env = environment(postgres_url, redis_url, market_url=engine.market_url, **DEFAULT_RECOVERY)
        with role_processes(["worker"], env, tmp_path / "first") as (first,):
            await wait_for_workers(redis_url, 1)
            order_ids = await asyncio.gather(*(engine.submit() for _ in range(3)))
            await asyncio.gather(*(wait_until_in_flight(engine, order_id) for order_id in order_ids))
            with role_processes(["worker"], env, tmp_path / "second") as (second,):
                await wait_for_workers(redis_url, 2)
                yield TwoWorkers(engine, first, second, order_ids)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_stopped_worker_hands_its_orders_back_at_once_without_error_lines(
    postgres_url, redis_url, tmp_path, signum
):
    async with orders_in_the_first_of_two_workers(postgres_url, redis_url, tmp_path) as workers:
        workers.first.send_signal(signum)
        assert await asyncio.to_thread(workers.first.wait, 15) == 0
        # Resumed by the other worker at once, not after the lease (30 s) and the sweep's grace.
        async with asyncio.timeout(20):
            await asyncio.gather(*(workers.engine.stream(order_id) for order_id in workers.order_ids))
        remaining = await consumers(redis_url)
        streams = [
            await workers.engine.services.store.read_stream(order_id) for order_id in workers.order_ids
        ]

    for stream in streams:
        assert [r.version for r in stream] == list(range(1, len(stream) + 1))
        assert sum(isinstance(r.event, (OrderConfirmed, OrderFailed)) for r in stream) == 1
        assert stream[-1].metadata["worker"] == worker_id(workers.second)
    assert remaining == {worker_id(workers.second)}, "the stopped worker left the consumer group"
    assert error_lines(tmp_path / "first" / "worker-0.log") == []


async def test_a_killed_worker_is_removed_and_the_queue_depth_is_true_within_seconds(
    postgres_url, redis_url, tmp_path
):
    async with orders_in_the_first_of_two_workers(postgres_url, redis_url, tmp_path) as workers:
        assert await queue_depth(workers.engine) == 3  # delivered to the first worker, not acknowledged
        workers.first.kill()
        workers.first.wait()
        async with asyncio.timeout(20):
            while await consumers(redis_url) != {worker_id(workers.second)}:  # noqa: ASYNC110 (Redis state)
                await asyncio.sleep(0.1)
            while await queue_depth(workers.engine) != 0:  # noqa: ASYNC110 (the next scrape)
                await asyncio.sleep(0.1)
