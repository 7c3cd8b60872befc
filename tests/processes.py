"""Running the engine's roles as real processes (`order-engine api|worker|projector`) for tests and the
chaos run, and waiting for them to be ready."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.settings import FAST
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


@dataclass
class Role:
    """One engine process (`order-engine <role>`, the role being what its name has before a dash:
    "worker-1") that a driver may stop or kill and start again; each start logs to its own file."""

    name: str
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def log_file(self) -> Path:
        """The current (last) start's log."""
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        log = self.log_file.open("w")
        role = self.name.split("-")[0]
        self.process = subprocess.Popen(
            [ORDER_ENGINE, role], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@contextmanager
def role_processes(roles: list[str], env: dict[str, str], log_dir: Path) -> Iterator[list[subprocess.Popen]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = [
        subprocess.Popen(
            [ORDER_ENGINE, role],
            env={**os.environ, **env},
            stdout=(log_dir / f"{role}-{n}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for n, role in enumerate(roles)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=20)


def environment(
    database_url: str, redis_url: str, base: Mapping[str, object] = FAST, **settings: object
) -> dict[str, str]:
    """The processes' environment: `base` settings (the tests' fast venues by default), then `settings`."""
    return {name.upper(): str(value) for name, value in {**base, **settings}.items()} | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_until_healthy(http: httpx.AsyncClient, timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while True:  # another process: polling its health endpoint is the only way to know it is up
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def until(
    check: Callable[[], Awaitable[bool]], timeout_s: float, what: str, poll_s: float = 0.1
) -> None:
    """Until `check()` holds, asked every `poll_s`: for another process's state (the log, Redis), which gives
    no event to await. Raises AssertionError naming `what` after `timeout_s`."""
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():  # noqa: ASYNC110 (another process's state)
                await asyncio.sleep(poll_s)
    except TimeoutError:
        raise AssertionError(f"not within {timeout_s} s: {what}") from None
