"""The machine a result was measured on: cores, memory, and the versions of what ran."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version

import psycopg
import redis


def describe(database_url: str, redis_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    client = redis.Redis.from_url(redis_url)
    try:
        redis_server = client.info("server")["redis_version"]
    finally:
        client.close()
    return {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory_gib": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f}",
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "redis": redis_server,
        "litestar": version("litestar"),
        "sqlalchemy": version("sqlalchemy"),
        "psycopg": version("psycopg"),
        "taskiq": version("taskiq"),
    }


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"
