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
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from redis.asyncio import Redis

from tests.settings import FAST
from workers.presence import live_workers

ORDER_ENGINE = str(Path(sys.executable).parent / "order-engine")
# How long a process may take to answer: on a 2-core machine busy with other work, importing the engine
# alone takes tens of seconds.
STARTUP_TIMEOUT_S = 120.0
# Longer than a stop may take: SHUTDOWN_GRACE_S (20 s by default) and the close timeouts after it.
STOP_TIMEOUT_S = 45.0


async def wait_for_workers(redis_url: str, count: int, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Until `count` worker processes have announced themselves (they give no other sign of readiness)."""
    client = Redis.from_url(redis_url)
    try:
        async with asyncio.timeout(timeout_s):
            while len(await live_workers(client)) < count:  # noqa: ASYNC110 (another process's state)
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


# Each started process's log file, for the message of a process that does not stop.
_LOGS: weakref.WeakKeyDictionary[subprocess.Popen, Path] = weakref.WeakKeyDictionary()


def start_role(role: str, env: Mapping[str, str], log: Path) -> subprocess.Popen:
    """`order-engine <role>` with `env` added to this process's environment, writing to `log`."""
    process = subprocess.Popen(
        [ORDER_ENGINE, role], env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    _LOGS[process] = log
    return process


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
        self.process = start_role(self.name.split("-")[0], self.env, self.log_file)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()


@contextmanager
def role_processes(roles: list[str], env: dict[str, str], log_dir: Path) -> Iterator[list[subprocess.Popen]]:
    log_dir.mkdir(parents=True, exist_ok=True)
    processes = [start_role(role, env, log_dir / f"{role}-{n}.log") for n, role in enumerate(roles)]
    try:
        yield processes
    finally:
        stop_processes(processes)


def stop_processes(processes: Iterable[subprocess.Popen], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM every one of `processes` still running and wait for them all, `timeout_s` in all. One still
    running then is killed, so that no process outlives its test (to write into the next test's database),
    and AssertionError names it with the end of its log."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    stuck = []
    for process in processes:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stuck.append(process)
    for process in stuck:
        process.kill()
        process.wait()
    if stuck:
        raise AssertionError(
            "\n".join(
                f"{' '.join(map(str, p.args))} (pid {p.pid}) did not stop within {timeout_s:.0f} s"
                f" of SIGTERM; its log ends:\n{_tail(_LOGS.get(p))}"
                for p in stuck
            )
        )


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None:
        return "(not kept)"
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError as error:
        return f"({error})"


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


async def wait_until_healthy(http: httpx.AsyncClient, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
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
