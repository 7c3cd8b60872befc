"""The compose file's topology as plain processes: the market, two APIs behind the repository's own
Caddyfile (deploy/Caddyfile, run by Debian's caddy), two workers and two projectors, on the test's
PostgreSQL and Redis. Docker does not run on the development or CI machines; this is the same fleet."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import environment, free_port, role_processes, wait_for_workers, wait_until_healthy
from tests.services import require_tool

ROOT = Path(__file__).resolve().parent.parent
CADDYFILE = ROOT / "deploy" / "Caddyfile"


@dataclass
class Fleet:
    url: str  # the proxy: the one URL
    api_urls: list[str]
    apis: list[subprocess.Popen]
    market_url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1)


@contextmanager
def caddy_process(port: int, api_ports: list[int], work_dir: Path) -> Iterator[subprocess.Popen]:
    """deploy/Caddyfile on `port`, in front of the APIs on `api_ports`."""
    binary = require_tool("caddy", "apt-get install caddy")
    work_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PROXY_PORT": str(port),
        "API_1": f"127.0.0.1:{api_ports[0]}",
        "API_2": f"127.0.0.1:{api_ports[1]}",
        # Caddy keeps state under these; the test's own folder, not the user's home.
        "XDG_DATA_HOME": str(work_dir / "data"),
        "XDG_CONFIG_HOME": str(work_dir / "config"),
    }
    process = subprocess.Popen(
        [binary, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env,
        stdout=(work_dir / "caddy.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


@asynccontextmanager
async def fleet(
    database_url: str, redis_url: str, work_dir: Path, **settings: object
) -> AsyncIterator[Fleet]:
    """Every role of docker-compose.yml as a process, in the order compose starts them (the database is
    already migrated); yields once all of them are ready."""
    market_port = free_port()
    market_url = f"http://127.0.0.1:{market_port}"
    api_ports = [free_port(), free_port()]

    def env(**more: object) -> dict[str, str]:
        return environment(
            database_url, redis_url, market_url=market_url, market_port=market_port, **settings, **more
        )

    with ExitStack() as stack:
        stack.enter_context(role_processes(["market"], env(), work_dir / "market"))
        async with httpx.AsyncClient(base_url=market_url) as http:
            await wait_until_healthy(http)
        apis = [
            stack.enter_context(role_processes(["api"], env(port=port), work_dir / f"api-{n}"))[0]
            for n, port in enumerate(api_ports, 1)
        ]
        stack.enter_context(role_processes(["worker", "worker"], env(), work_dir / "workers"))
        stack.enter_context(role_processes(["projector", "projector"], env(), work_dir / "projectors"))
        api_urls = [f"http://127.0.0.1:{port}" for port in api_ports]
        for url in api_urls:
            async with httpx.AsyncClient(base_url=url) as http:
                await wait_until_healthy(http)
        await wait_for_workers(redis_url, 2)
        proxy_port = free_port()
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        stack.enter_context(caddy_process(proxy_port, api_ports, work_dir / "proxy"))
        async with httpx.AsyncClient(base_url=proxy_url) as http:
            await wait_until_healthy(http)
        yield Fleet(proxy_url, api_urls, apis, market_url)
