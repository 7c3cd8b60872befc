"""What a benchmark part runs against: a fresh database and Redis, and the engine as real processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from migrations.run import upgrade_to_head
from tests.processes import environment, free_port, role_processes, wait_until_healthy
from tests.services import create_database, drop_database, fresh_redis
from tests.settings import MARKET_ORDER

# The engine's own cost: no chain delays, failures or price moves, no rate limits, quiet logs.
ENGINE_ONLY = {
    "mock_quote_delay_ms": 0,
    "mock_execution_delay_ms_min": 0,
    "mock_execution_delay_ms_max": 0,
    "mock_failure_rate": 0.0,
    "market_flow_interval_ms": 0,
    "rate_limit_max": 1_000_000_000,
    "rate_limit_window_s": 1,
    "submit_rate_limit_per_minute": 0,
    "log_level": "WARNING",
}


# How long an engine process may take to answer its health check or join the workers: on a 2-core machine
# busy with other work, importing the engine alone takes it tens of seconds.
STARTUP_TIMEOUT_S = 120


@dataclass(frozen=True)
class Backends:
    database_url: str
    redis_url: str


@contextmanager
def fresh_backends() -> Iterator[Backends]:
    """A new migrated PostgreSQL database (dropped afterwards) and a flushed Redis database."""
    database_url = create_database()
    try:
        upgrade_to_head(database_url)
        yield Backends(database_url, fresh_redis())
    finally:
        drop_database(database_url)


@dataclass(frozen=True)
class EngineProcesses:
    urls: list[str]  # each API process's base URL
    pids: dict[str, list[int]]  # by role: "market", "api", "worker", "projector"
    market_url: str | None = None  # the market process's, when there is one


@contextmanager
def engine_processes(
    backends: Backends, log_dir: Path, *, apis: int, workers: int, projectors: int = 1, **settings: object
) -> Iterator[EngineProcesses]:
    """`order-engine api|worker|projector` processes, each API on a port of its own, and the market as its
    own process (`order-engine market`) when there are workers to swap on it."""
    settings = {**ENGINE_ONLY, **settings}  # over the engine's defaults, not the tests' fast settings
    urls: list[str] = []
    pids: dict[str, list[int]] = {"market": [], "api": [], "worker": [], "projector": []}
    market_url: str | None = None
    with ExitStack() as stack:
        if workers:
            market_port = free_port()
            env = environment(
                backends.database_url, backends.redis_url, {}, market_port=market_port, **settings
            )
            (market,) = stack.enter_context(role_processes(["market"], env, log_dir / "market"))
            settings["market_url"] = market_url = f"http://127.0.0.1:{market_port}"
            pids["market"].append(market.pid)
            asyncio.run(wait_healthy([market_url]))
        for n in range(apis):
            port = free_port()
            env = environment(backends.database_url, backends.redis_url, {}, port=port, **settings)
            (api,) = stack.enter_context(role_processes(["api"], env, log_dir / f"api-{n}"))
            urls.append(f"http://127.0.0.1:{port}")
            pids["api"].append(api.pid)
        env = environment(backends.database_url, backends.redis_url, {}, **settings)
        roles = ["worker"] * workers + ["projector"] * projectors
        if roles:
            for role, process in zip(
                roles, stack.enter_context(role_processes(roles, env, log_dir)), strict=True
            ):
                pids[role].append(process.pid)
        yield EngineProcesses(urls, pids, market_url)


async def wait_healthy(urls: Sequence[str]) -> None:
    """Until each engine or market process at `urls` answers its health check."""
    for url in urls:
        async with httpx.AsyncClient(base_url=url) as http:
            await wait_until_healthy(http, STARTUP_TIMEOUT_S)


class reference_server:
    """bench/reference_app.py under uvicorn, on the engine's server settings."""

    def __init__(self, backends: Backends, work_dir: Path) -> None:
        self.backends = backends
        self.log = work_dir / "reference.log"
        self.port = free_port()

    def __enter__(self) -> str:
        command = [sys.executable, "-m", "uvicorn", "--factory", "bench.reference_app:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "DATABASE_URL": self.backends.database_url},
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{self.port}"
        asyncio.run(_wait_answering(f"{url}/parse", self.process, self.log))
        return url

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


async def _wait_answering(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = STARTUP_TIMEOUT_S
) -> None:
    async with httpx.AsyncClient() as http, asyncio.timeout(timeout_s):
        while True:  # another process: asking is the only way to know it is up
            if process.poll() is not None:  # it died: say why now, not after the timeout
                output = await asyncio.to_thread(log.read_text)
                raise RuntimeError(f"the reference server exited ({process.returncode}):\n{output}")
            try:
                if (await http.post(url, json=MARKET_ORDER)).status_code == 201:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
