"""Connections: POST throughput and p99 as connections rise, beside the bare handler with one INSERT."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

import psycopg

from bench.http_load import INSTALL_WRK, LoadResult, post_load
from bench.results import Curve, Figure, Measured, Size
from bench.servers import Backends, engine_processes, reference_server, wait_healthy
from tests.settings import MARKET_ORDER

# (connections at each point of the curve, wrk seconds at each point)
SIZES = {Size.SMOKE: ((1, 8), 1), Size.FULL: ((1, 8, 32, 128, 512), 10)}
TOOLS = {"wrk": INSTALL_WRK}
WARMUP_CONNECTIONS = 32  # one unrecorded run first, so that each server's database pool is open
# Long enough that a slow answer at 512 connections is measured in the p99, not dropped as an error.
WRK_TIMEOUT_S = 30
# The curve must not fall: the most connections' req/s at least this share of the curve's best.
HOLDS = 0.9
# Besides a connection per socket, each process keeps its pool's, its logs' and Python's files open.
SPARE_FILE_DESCRIPTORS = 1024


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    points, seconds = SIZES[size]
    _allow_open_files(max(points) + SPARE_FILE_DESCRIPTORS)  # before the servers start: they inherit it
    # Both servers start at once (each takes seconds to start on a busy machine); wrk loads one at a time.
    with (
        engine_processes(backends, work_dir / "post", apis=1, workers=0, projectors=0) as engine,
        reference_server(backends, work_dir) as reference_url,
    ):
        asyncio.run(wait_healthy(engine.urls))
        ours_url, insert_url = f"{engine.urls[0]}/api/orders/execute", f"{reference_url}/insert"
        for url in (ours_url, insert_url):
            _load(url, WARMUP_CONNECTIONS, seconds=1)
        curve: dict[int, tuple[LoadResult, LoadResult]] = {}
        for connections in points:
            _empty_tables(backends)  # each point writes into tables of the same size
            ours, insert = (_load(url, connections, seconds) for url in (ours_url, insert_url))
            for loaded in (ours, insert):
                assert loaded.errors == 0 and loaded.non_2xx == 0, f"requests failed under load: {loaded}"
            curve[connections] = ours, insert

    figures = []
    for connections, (ours, insert) in curve.items():
        figures += [
            Figure(
                name=f"POST /api/orders/execute throughput, {_connections(connections)}",
                value=ours.per_second,
                unit="req/s",
                reference="bare handler + one INSERT",
                reference_value=insert.per_second,
            ),
            Figure(
                name=f"POST latency, {_connections(connections)}, p99",
                value=_p99_ms(ours),
                unit="ms",
                reference="bare handler + one INSERT",
                reference_value=_p99_ms(insert),
            ),
        ]
    most = max(points)
    best = max(ours.per_second for ours, _ in curve.values())
    at_most = curve[most][0].per_second
    figures.append(
        Figure(
            name=f"POST throughput at {most} connections, vs the best of the curve",
            value=at_most,
            unit="req/s",
            reference="best of the curve",
            reference_value=best,
            goal=f"≥ {HOLDS}x reference (does not fall as connections rise)",
            met=at_most >= HOLDS * best if size is Size.FULL else None,
        )
    )
    return Measured(
        title="POST as connections rise",
        settings={
            "connections": ", ".join(str(n) for n in points),
            "wrk_s": seconds,
            "wrk_threads": 1,
            "wrk_timeout_s": WRK_TIMEOUT_S,
        },
        figures=figures,
        curves=[
            Curve(
                title=title,
                x="connections",
                y=unit,
                xs=list(points),
                series={
                    "POST /api/orders/execute": [measure(ours) for ours, _ in curve.values()],
                    "bare handler + one INSERT": [measure(insert) for _, insert in curve.values()],
                },
                log_x=True,
                log_y=log_y,
            )
            for title, unit, measure, log_y in (
                ("POST throughput", "req/s", _per_second, False),
                ("POST latency, p99", "ms (log scale)", _p99_ms, True),  # from milliseconds to seconds
            )
        ],
        notes=[
            "wrk (one thread, keep-alive connections) against the API process alone (no worker or "
            "projector), then against bench/reference_app.py's /insert (a bare Litestar handler writing one "
            "row) on the same uvicorn settings, at each point in turn; both servers run throughout.",
            f"Before the curve, each server takes {WARMUP_CONNECTIONS} connections for a second "
            "(unrecorded) so that its database pool is open; before each point both tables are emptied.",
            f"The curve holds if the req/s at {most} connections is at least {HOLDS}x the best point's.",
        ],
    )


def _per_second(loaded: LoadResult) -> float:
    return loaded.per_second


def _p99_ms(loaded: LoadResult) -> float:
    return loaded.p99_us / 1000


def _connections(count: int) -> str:
    return f"{count} connection" + ("s" if count > 1 else "")


def _load(url: str, connections: int, seconds: float) -> LoadResult:
    return post_load(url, MARKET_ORDER, seconds=seconds, connections=connections, timeout_s=WRK_TIMEOUT_S)


def _allow_open_files(needed: int) -> None:
    """Raises this process's soft limit on open files to `needed`, for it and the processes it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit(f"the connections part needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _empty_tables(backends: Backends) -> None:
    with psycopg.connect(backends.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE order_events, reference_orders")
