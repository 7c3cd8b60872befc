"""`/metrics`: Prometheus text with orders, venues, latency, lag, queue depth and WebSocket clients."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.harness import engine_settings, project_everything, running_engine


async def test_metrics_describe_the_orders_that_ran(backend):
    async with running_engine(engine_settings(backend)) as engine:
        order_ids = await asyncio.gather(*(engine.submit() for _ in range(4)))
        await asyncio.gather(*(engine.stream(order_id) for order_id in order_ids))
        await project_everything(engine.services)
        response = await engine.http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples[("order_engine_orders", (("status", "confirmed"),))] == 4
    assert sum(v for (name, _), v in samples.items() if name == "order_engine_confirmed_orders") == 4
    assert samples[("order_engine_execution_latency_seconds_count", ())] == 4
    assert samples[("order_engine_execution_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert samples[("order_engine_projection_lag_events", (("projection", "orders"),))] == 0
    assert samples[("order_engine_queue_depth", ())] == 0
    assert samples[("order_engine_websocket_clients", ())] == 0
