"""Finding the real PostgreSQL and Redis the integration tests run against.

Tests that need them are skipped (with the reason) when they do not answer, unless REQUIRE_SERVICES=1, as
in CI, where a missing server fails the run instead.
"""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
import redis

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRED = os.environ.get("REQUIRE_SERVICES") == "1"


def unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); set TEST_DATABASE_URL / TEST_REDIS_URL"
    if REQUIRED:
        pytest.fail(f"REQUIRE_SERVICES=1 but {message}")
    pytest.skip(message)


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
