"""Schemathesis against the app's own OpenAPI schema (and the market's), every check: no 5xx, no response
outside the schema, no schema-breaking request accepted, and no schema-valid request rejected (the schema
says exactly what the API accepts). On both backends; the run writes nothing into the repository."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from api.market import create_market_app
from engine.services import make_market
from eventstore.backend import backend_for
from market.store import SqlMarketStore
from tests.harness import engine_settings, running_engine, serve_http

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")  # the rules a JSON Schema cannot state
REPOSITORY = Path(__file__).resolve().parents[2]


async def test_generated_requests_find_no_failure_of_any_check(backend, tmp_path):
    async with running_engine(engine_settings(backend)) as engine:
        await schemathesis_finds_nothing(engine.ws_base.replace("ws://", "http://"), tmp_path)


async def test_the_market_api_finds_no_failure_of_any_check(sqlite_url, tmp_path):
    settings = engine_settings({"database_url": sqlite_url, "redis_url": None})
    backend = backend_for(sqlite_url)
    db = backend.open(sqlite_url)
    market = make_market(settings, SqlMarketStore(db, backend))

    @asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        await market.start()
        yield
        await market.stop()

    try:
        async with serve_http(create_market_app(market, lifespan)) as base_url:
            await schemathesis_finds_nothing(base_url, tmp_path)
    finally:
        await db.dispose()


async def schemathesis_finds_nothing(base_url: str, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        SCHEMATHESIS,
        "--config-file",
        str(CONFIG),
        "run",
        f"{base_url}/schema/openapi.json",
        "--checks",
        "all",  # positive_data_acceptance included: a schema-valid request must not get 400 or 422
        "--max-examples",
        "25",
        "--generation-deterministic",  # the same cases every run, and no example database
        "--request-timeout",
        "10",
        # Schemathesis keeps its run records (.schemathesis/) in the working directory.
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS), "PYTHONPATH": str(REPOSITORY)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    report = output.decode()
    assert process.returncode == 0, report
    assert "generated" in report


def test_no_run_records_are_kept_in_the_repository():
    """Schemathesis and Hypothesis rewrite their records at every run: none is tracked, all are ignored."""
    tracked = subprocess.run(
        ["git", "ls-files", ".schemathesis", ".hypothesis"], cwd=REPOSITORY, capture_output=True, check=True
    )
    assert tracked.stdout == b""
    for record in (".schemathesis/default/cache/crashes/manifest.json", ".hypothesis/examples"):
        assert subprocess.run(["git", "check-ignore", "-q", record], cwd=REPOSITORY).returncode == 0, record
