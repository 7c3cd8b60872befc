from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from migrations.run import upgrade_to_head
from tests.services import create_database, drop_database, fresh_redis

READ_SIDE_AND_LOG = ("order_events", "orders", "projection_checkpoints")
MARKET = ("market_pools", "market_transactions", "market_tokens")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    url = create_database()
    upgrade_to_head(url)
    yield url
    drop_database(url)


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    with psycopg.connect(postgres_database, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(READ_SIDE_AND_LOG + MARKET)} RESTART IDENTITY")
    return postgres_database


@pytest.fixture
def redis_url() -> str:
    """The test Redis database, flushed for this test."""
    return fresh_redis()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'order-engine.db'}"
    upgrade_to_head(url)
    return url


@pytest.fixture(params=["embedded", "postgres+redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, str | None]:
    """Both ways the engine runs: DATABASE_URL and REDIS_URL for each."""
    if request.param == "embedded":
        return {"database_url": request.getfixturevalue("sqlite_url"), "redis_url": None}
    return {
        "database_url": request.getfixturevalue("postgres_url"),
        "redis_url": request.getfixturevalue("redis_url"),
    }
