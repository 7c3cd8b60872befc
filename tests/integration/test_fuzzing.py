"""Schemathesis against the app's own OpenAPI schema: no 5xx, no response outside the schema, no request
that breaks the schema accepted."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.harness import engine_settings, running_engine

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


async def test_generated_requests_find_no_server_error_and_no_schema_violation(sqlite_url):
    async with running_engine(engine_settings({"database_url": sqlite_url, "redis_url": None})) as engine:
        base_url = engine.ws_base.replace("ws://", "http://")
        process = await asyncio.create_subprocess_exec(
            SCHEMATHESIS,
            "run",
            f"{base_url}/schema/openapi.json",
            "--checks",
            "all",
            # Schema-valid data may still break a business rule the schema cannot express (an unknown
            # token, an amount below the token's smallest unit): refusing it with 400 is right.
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "60",
            "--generation-deterministic",
            "--request-timeout",
            "10",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()

    report = output.decode()
    assert process.returncode == 0, report
    assert "generated" in report
