"""Finding what the tests run against: the real PostgreSQL and Redis, and the programs that are not Python
packages (Chromium, newman, wrk, pgbench).

A test that needs one is skipped (with the reason) where it is missing, unless REQUIRE_SERVICES=1, as in CI
(`.ci/run` installs every tool), where a missing server or tool fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
import redis

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the calling test with `reason`; under REQUIRE_SERVICES=1 (CI) fail it instead."""
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}")
    pytest.skip(reason)


def unavailable(what: str, error: Exception) -> NoReturn:
    skip_or_fail(f"{what} is not reachable ({error}); set TEST_DATABASE_URL / TEST_REDIS_URL")


def require_tool(name: str, install: str, path: Path | None = None) -> str:
    """The program `name` (at `path` if given, else on PATH), or skip/fail saying how to install it."""
    found = shutil.which(name if path is None else str(path))
    if found is None:
        skip_or_fail(f"{name} is missing ({path or 'not on PATH'}); the test needs it: {install}")
    return found


def create_database() -> str:
    """A new, empty PostgreSQL database on the test server; returns its URL."""
    name = f"order_engine_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        unavailable("PostgreSQL", error)
    return TEST_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_redis() -> str:
    try:
        client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=3)
        client.flushdb()
        client.close()
    except redis.RedisError as error:
        unavailable("Redis", error)
    return TEST_REDIS_URL
