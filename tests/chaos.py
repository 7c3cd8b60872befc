"""The chaos run: orders through 2 API processes and 2 workers (plus a projector and the market) on
PostgreSQL + Redis while a driver kills workers, kills and restarts API processes and the market, and flushes
Redis at random moments. At the end it checks and prints the invariants, the chain's record included.

    uv run python -m tests.chaos --orders 300

It needs the test servers (TEST_DATABASE_URL, TEST_REDIS_URL; it creates and drops its own database).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis.asyncio as aioredis

from tests.harness import MARKET_ORDER
from tests.processes import (
    Role,
    environment,
    free_port,
    stop_processes,
    wait_for_workers,
    wait_until_healthy,
)
from tests.run_outcome import read_outcome, run_from_command_line, until_all_ended, until_projected

CHAOS_SETTINGS = {
    "mock_quote_delay_ms": 20,
    "mock_execution_delay_ms_min": 150,
    "mock_execution_delay_ms_max": 400,
    "mock_failure_rate": 0.1,
    "worker_lease_s": 1,
    "recovery_interval_s": 0.5,
    "recovery_grace_s": 1,
}


@dataclass
class Summary:
    orders_accepted: int = 0
    submissions_refused: int = 0
    faults: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    events: int = 0
    invariants: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(self.invariants.values())

    def report(self) -> str:
        lines = [
            f"orders accepted: {self.orders_accepted} (submissions refused while an API was down: "
            f"{self.submissions_refused})",
            f"outcomes: {dict(self.outcomes)}; events in the log: {self.events}; {self.seconds:.1f} s",
            f"faults injected: {dict(self.faults)}",
            *(f"  {'ok  ' if held else 'FAIL'} {name}" for name, held in self.invariants.items()),
        ]
        return "\n".join(lines)


async def chaos_run(
    database_url: str, redis_url: str, order_count: int, log_dir: Path, seed: int | None = None
) -> Summary:
    rng = random.Random(seed)
    summary = Summary()
    started = time.monotonic()
    ports, market_port = [free_port(), free_port()], free_port()
    market_url = f"http://127.0.0.1:{market_port}"
    settings = {**CHAOS_SETTINGS, "market_port": market_port, "market_url": market_url}
    base = {**os.environ, **environment(database_url, redis_url, **settings)}
    apis = [Role(f"api-{n}", {**base, "PORT": str(port)}, log_dir) for n, port in enumerate(ports)]
    workers = [Role(f"worker-{n}", base, log_dir) for n in range(2)]
    market = Role("market-0", base, log_dir)
    roles = [market, *apis, *workers, Role("projector-0", base, log_dir)]
    for role in roles:
        role.start()
    accepted: list[str] = []
    submitting = True
    try:
        for url in (market_url, *(f"http://127.0.0.1:{port}" for port in ports)):
            async with httpx.AsyncClient(base_url=url) as http:
                await wait_until_healthy(http)
        await wait_for_workers(redis_url, 2)

        async def submit(n: int) -> None:
            key = str(uuid.uuid4())  # a retry after an ambiguous failure must not make a second order
            body = {**MARKET_ORDER, "amountIn": f"{rng.uniform(0.1, 3):.3f}"}
            for attempt in range(60):
                port = ports[(n + attempt) % 2]
                try:
                    async with httpx.AsyncClient(timeout=5) as http:
                        response = await http.post(
                            f"http://127.0.0.1:{port}/api/orders/execute",
                            json=body,
                            headers={"Idempotency-Key": key},
                        )
                    if response.status_code in (200, 201):
                        accepted.append(response.json()["orderId"])
                        return
                except httpx.HTTPError:
                    pass
                summary.submissions_refused += 1
                await asyncio.sleep(0.1)

        async def drive_faults() -> None:
            redis = aioredis.Redis.from_url(redis_url)
            try:
                while submitting:
                    await asyncio.sleep(rng.uniform(0.3, 1.2))
                    fault = rng.choice(["kill worker", "restart api", "flush redis", "kill market"])
                    summary.faults[fault] += 1
                    if fault == "kill worker":
                        role = rng.choice(workers)
                        role.kill()
                        role.start()
                    elif fault == "restart api":
                        role = rng.choice(apis)
                        role.kill()
                        role.start()
                    elif fault == "kill market":  # transactions in flight land, or expire, at its restart
                        market.kill()
                        market.start()
                    else:
                        await redis.flushdb()
            finally:
                await redis.aclose()

        async def submit_all() -> None:
            nonlocal submitting
            batch = 20
            for start in range(0, order_count, batch):
                await asyncio.gather(*(submit(n) for n in range(start, min(start + batch, order_count))))
            submitting = False

        await asyncio.gather(submit_all(), drive_faults())
        summary.orders_accepted = len(accepted)
        await until_all_ended(database_url, accepted, timeout_s=120)
        await until_projected(database_url, redis_url, timeout_s=60)
        outcome = await read_outcome(database_url, redis_url, market_url, accepted)
        summary.events, summary.outcomes = outcome.events, outcome.outcomes
        summary.invariants = outcome.invariants()
    finally:
        stop_processes(role.process for role in roles if role.process is not None)
    summary.seconds = time.monotonic() - started
    return summary


if __name__ == "__main__":
    run_from_command_line(__doc__, "chaos", chaos_run)
