"""Forwarded headers are believed only from TRUSTED_PROXIES: a client cannot choose the address the submit
rate limit counts it under (uvicorn, left to itself, believes them from 127.0.0.1)."""

from __future__ import annotations

import httpx
import pytest

from tests.harness import MARKET_ORDER
from tests.processes import environment, free_port, role_processes, wait_until_healthy


@pytest.mark.parametrize(("trusted", "statuses"), [("", [201, 201, 429, 429]), ("127.0.0.1", [201] * 4)])
async def test_forwarded_for_counts_only_from_a_trusted_proxy(
    trusted, statuses, postgres_url, redis_url, tmp_path
):
    port = free_port()
    env = environment(
        postgres_url, redis_url, PORT=port, SUBMIT_RATE_LIMIT_PER_MINUTE=2, TRUSTED_PROXIES=trusted
    )
    with role_processes(["api"], env, tmp_path):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            await wait_until_healthy(http, timeout_s=60)
            answers = [
                await http.post(
                    "/api/orders/execute", json=MARKET_ORDER, headers={"X-Forwarded-For": f"10.0.0.{n}"}
                )
                for n in range(4)
            ]
    assert [a.status_code for a in answers] == statuses
