"""Separate worker processes on PostgreSQL + Redis: they share the queue and the rate limit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis.asyncio import Redis

from domain.events import RoutingStarted
from tests.harness import FAST, engine_settings, running_engine
from workers.presence import live_workers

ORDER_ENGINE = str(Path(sys.executable).parent / "order-engine")


async def wait_for_workers(redis_url: str, count: int, timeout_s: float = 30) -> None:
    """Until `count` worker processes have announced themselves (they give no other sign of readiness)."""
    client = Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(timeout_s):
            while len(await live_workers(client)) < count:  # noqa: ASYNC110 (another process's state)
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


@contextmanager
def worker_processes(count: int, env: dict[str, str], log_dir: Path) -> Iterator[list[subprocess.Popen]]:
    processes = [
        subprocess.Popen(
            [ORDER_ENGINE, "worker"],
            env={**os.environ, **env},
            stdout=(log_dir / f"worker-{n}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for n in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=20)


def environment(database_url: str, redis_url: str, **settings: object) -> dict[str, str]:
    return {name.upper(): str(value) for name, value in {**FAST, **settings}.items()} | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


async def test_rate_limit_holds_across_two_worker_processes(postgres_url, redis_url, tmp_path):
    limit, window_s, orders = 5, 2.0, 15
    env = environment(
        postgres_url, redis_url, rate_limit_max=limit, rate_limit_window_s=window_s, worker_concurrency=3
    )
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend), worker=False) as engine:
        with worker_processes(2, env, tmp_path):
            await wait_for_workers(redis_url, 2)
            order_ids = await asyncio.gather(*(engine.submit() for _ in range(orders)))
            results = await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
        streams = [await engine.services.store.read_stream(order_id) for order_id in order_ids]

    assert all(messages[-1]["status"] == "confirmed" for messages, _ in results)
    starts = sorted(
        (r.recorded_at.timestamp(), r.metadata["worker"])
        for stream in streams
        for r in stream
        if isinstance(r.event, RoutingStarted) and r.event.attempt == 1
    )
    times = [t for t, _ in starts]
    # Never more than `limit` starts within one window (less a little for the time between taking the
    # turn and recording the event).
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + window_s - 0.05) <= limit, [
            round(u - times[0], 3) for u in times
        ]
    assert times[-1] - times[0] >= 2 * window_s - 0.1  # 15 orders at 5 per window need three windows
    assert len({worker for _, worker in starts}) == 2, "both worker processes should have started orders"
