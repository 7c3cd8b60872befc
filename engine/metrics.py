"""`GET /metrics` in Prometheus's text format, read at scrape time from the read side, the log and Redis.

Everything shown about orders comes from the shared read side, so any API process reports the whole
engine, whichever worker executed an order; WebSocket clients and the embedded queue are this process's.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.services import Services
from eventstore.replica import Replica
from workers.queue import queue_depth

LATENCY_BUCKETS_S = [0.5, 1, 2, 3, 5, 10, 30, 60, 300]


class _Collected(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


async def render_metrics(services: Services) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collected(await _collect(services)))
    return generate_latest(registry)


async def _collect(services: Services) -> list[Metric]:
    stats = await services.queries.stats()
    orders = GaugeMetricFamily(
        "order_engine_orders", "Orders in the read table, by status", labels=["status"]
    )
    for status, count in stats.by_status.items():
        orders.add_metric([status], count)
    venues = GaugeMetricFamily(
        "order_engine_confirmed_orders", "Confirmed orders by the venue that executed them", labels=["venue"]
    )
    for venue, count in stats.confirmed_by_venue.items():
        venues.add_metric([venue or "none"], count)
    retries = GaugeMetricFamily("order_engine_retries", "Failed attempts that were retried, over all orders")
    retries.add_metric([], stats.retries)

    within, total_s, count = await services.queries.execution_latencies(LATENCY_BUCKETS_S)
    latency = HistogramMetricFamily(
        "order_engine_execution_latency_seconds", "From submission to confirmed or failed, for ended orders"
    )
    buckets = [(str(bound), n) for bound, n in zip(LATENCY_BUCKETS_S, within, strict=True)]
    latency.add_metric([], [*buckets, ("+Inf", count)], total_s)

    lag = GaugeMetricFamily(
        "order_engine_projection_lag_events",
        "Committed events a projection has still to apply, those not yet visible to followers included",
        labels=["projection"],
    )
    for projection in services.projections:
        lag.add_metric([projection.name], await services.store.count_after(await projection.position()))
    horizon = await services.store.read_horizon()
    held_back = GaugeMetricFamily(
        "order_engine_log_held_back_events",
        "Committed events that followers may not read yet, behind a transaction of ours still open",
    )
    held_back.add_metric([], horizon.held_back_events)
    horizon_age = GaugeMetricFamily(
        "order_engine_read_horizon_age_seconds",
        "How long the oldest open transaction of our database (which holds the followers' view) has run",
    )
    horizon_age.add_metric([], horizon.holder.transaction_age_s if horizon.holder else 0.0)

    queued = GaugeMetricFamily("order_engine_queue_depth", "Orders waiting for a worker")
    if services.redis is not None:
        queued.add_metric([], await queue_depth(services.redis))
    elif services.executor is not None:
        queued.add_metric([], services.executor.waiting)
    clients = GaugeMetricFamily("order_engine_websocket_clients", "WebSocket clients of this API process")
    clients.add_metric([], services.feed.subscriber_count)
    fallbacks = CounterMetricFamily(
        "order_engine_enqueue_fallbacks",
        "Orders this process fired or handed back but could not queue: left to the recovery sweep",
    )
    fallbacks.add_metric([], services.enqueue_fallbacks)
    armed = GaugeMetricFamily(
        "order_engine_armed_orders", "Limit orders in the trigger index, waiting for their price or expiry"
    )
    armed.add_metric([], await services.trigger_index.count())
    return [
        *(orders, venues, retries, latency, lag, held_back, horizon_age, queued, clients, fallbacks, armed),
        *_replica_reads(services.replica),
    ]


def _replica_reads(replica: Replica | None) -> list[Metric]:
    if replica is None:
        return []
    reads = CounterMetricFamily(
        "order_engine_replica_reads",
        "Reads of this process meant for the read replica (lists, figures, WebSocket catch-up), by where "
        "they were served: `primary` while the replica could not be reached",
        labels=["served_by"],
    )
    reads.add_metric(["replica"], replica.served)
    reads.add_metric(["primary"], replica.fallbacks)
    return [reads]
