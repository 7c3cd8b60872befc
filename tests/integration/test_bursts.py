"""A burst of submissions is answered and queued without leaning on the recovery sweep: the log is the
outbox, followed by the relay, and the sweep is for crashes, not a path for bursts (issue: redis-py's pool
raised `MaxConnectionsError` past 100 connections, and orders waited for the sweep)."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import MARKET_ORDER, engine_settings, project_everything, running_engine
from tests.integration.test_relay import queued_order_ids

BURST, CONNECTIONS = 600, 200


def fallbacks(metrics_text: str) -> float:
    families = {family.name: family for family in text_string_to_metric_families(metrics_text)}
    (sample,) = families["order_engine_enqueue_fallbacks"].samples
    return sample.value


async def test_a_burst_over_200_connections_is_all_queued_at_once(postgres_url, redis_url):
    backend = {"database_url": postgres_url, "redis_url": redis_url}
    async with running_engine(engine_settings(backend), worker=False) as engine:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        async with httpx.AsyncClient(base_url=engine.http.base_url, limits=limits, timeout=60) as http:
            gate = asyncio.Semaphore(CONNECTIONS)

            async def submit() -> tuple[int, str]:
                async with gate:
                    answer = await http.post("/api/orders/execute", json=MARKET_ORDER)
                    return answer.status_code, answer.json().get("orderId")

            answers = await asyncio.gather(*(submit() for _ in range(BURST)))
        await project_everything(engine.services)  # the relay too (a worker runs it; none runs here)
        metrics = (await engine.http.get("/metrics")).text
        assert engine.services.redis is not None
        queued = await queued_order_ids(engine.services.redis)

    assert [status for status, _ in answers] == [201] * BURST
    assert sorted(queued) == sorted(order_id for _, order_id in answers)  # each once
    assert fallbacks(metrics) == 0, "orders left for the recovery sweep during a burst"
