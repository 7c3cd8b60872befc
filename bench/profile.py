"""Profile: where each process's time goes under load (py-spy on the API, the worker and the projector)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psycopg

from bench.cpu_time import CpuClock
from bench.pipeline import sustained_rate, wait_ready
from bench.results import Figure, Measured, Size
from bench.servers import Backends, engine_processes

SIZES = {Size.SMOKE: 1, Size.FULL: 20}  # seconds sampled
SAMPLE_RATE = 200  # per second
PY_SPY = str(Path(sys.executable).parent / "py-spy")

# Where time goes, by the frames on the stack (a sample counts in each group it has a frame of).
GROUPS = {
    "HTTP server and Litestar": ("litestar/", "uvicorn/"),
    "event store: appends": ("SqlEventStore.append", "PostgresEventStore.append"),
    "event store: reads": ("read_stream", "read_all"),
    "projection writes": ("OrdersProjection.apply", "RedisActiveOrders.apply"),
    "SQLAlchemy": ("sqlalchemy/",),
    "psycopg": ("psycopg/",),
    # Not redis/asyncio/retry.py: the worker's retry while Redis is away wraps a whole delivery.
    "Redis client": ("redis/asyncio/client.py", "redis/asyncio/connection.py", "redis/_parsers/"),
    "taskiq": ("taskiq/", "taskiq_redis/"),
    "msgspec encode/decode": ("msgspec",),
    "domain": ("domain/",),
}


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    seconds = SIZES[size]
    with engine_processes(backends, work_dir, apis=1, workers=1) as engine:
        asyncio.run(wait_ready(backends, engine.urls, workers=1))
        roles = {role: pids[0] for role, pids in engine.pids.items()}
        outputs = {role: work_dir / f"{role}.txt" for role in roles}
        # --gil: samples of Python holding the interpreter, i.e. running; without it a process preempted in a
        # send() to a loopback socket (the receiver woken in its place) looked busy sending.
        record = [PY_SPY, "record", "--gil", "--duration", str(seconds), "--rate", str(SAMPLE_RATE)]
        record.append("--nonblocking")
        spies = [
            subprocess.Popen(
                [*record, "--pid", str(pid), "--format", "raw", "--output", str(outputs[role])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for role, pid in roles.items()
        ]
        clock = CpuClock({role: pids for role, pids in engine.pids.items()})
        confirmed_before = _confirmed(backends)
        # Load from the start of sampling to its end (a little longer, so no sample sees it idle).
        rate = asyncio.run(sustained_rate(backends, engine.urls, workers=1, seconds=seconds + 2, warmup_s=1))
        cpu_s = clock.elapsed()
        confirmed = _confirmed(backends) - confirmed_before
        for spy in spies:
            spy.wait(timeout=seconds + 30)
    figures = [Figure(name="orders/s while profiled", value=rate, unit="orders/s")]
    figures += [
        Figure(name=f"CPU per confirmed order: {group}", value=1000 * used / max(confirmed, 1), unit="ms")
        for group, used in cpu_s.items()
    ]
    total_ms = 1000 * sum(cpu_s.values()) / max(confirmed, 1)
    figures.append(
        Figure(
            name="CPU per confirmed order: all",
            value=total_ms,
            unit="ms",
            reference="orders/s the machine's cores allow at that cost",
            reference_value=1000 * (os.cpu_count() or 1) / total_ms,
        )
    )
    for role, output in outputs.items():
        stacks = _read_stacks(output)
        total = sum(stacks.values())
        figures.append(
            Figure(name=f"{role}: busy", value=100 * total / (seconds * SAMPLE_RATE), unit="% of one core")
        )
        for group, share in _group_shares(stacks).most_common():
            if share / max(total, 1) >= 0.02:
                figures.append(Figure(name=f"{role}: {group}", value=100 * share / total, unit="% of busy"))
    return Measured(
        title="Profile: where the time goes",
        settings={
            "seconds": seconds,
            "sample_rate_hz": SAMPLE_RATE,
            "processes": "1 API, 1 worker, 1 projector",
        },
        figures=figures,
        notes=[
            "py-spy samples each process's Python stacks while it holds the interpreter (--gil: running, "
            "not waiting in a system call) while closed-loop submitters keep the pipeline busy (venue "
            "delays 0). A sample counts in every group it has a frame of, so the groups of one process "
            "overlap (SQLAlchemy and psycopg run inside the event store's appends).",
            "CPU per confirmed order: each process's CPU time from the operating system (children "
            "included: PostgreSQL's backends, ended or not) over the orders confirmed meanwhile. `bench` is "
            "the load generator; PostgreSQL's and Redis's are the whole local servers'.",
            "For a flame graph of one process: `py-spy record --pid <pid> -o flame.svg` while `python -m "
            "bench pipeline` runs.",
        ],
    )


def _confirmed(backends: Backends) -> int:
    with psycopg.connect(backends.database_url) as conn:
        (count,) = conn.execute("SELECT count(*) FROM order_events WHERE type = 'OrderConfirmed'").fetchone()
    return int(count)


def _read_stacks(path: Path) -> Counter[str]:
    """py-spy's raw output: one `frame;frame;... count` line per distinct stack."""
    stacks: Counter[str] = Counter()
    if path.exists():
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack:
                stacks[stack] += int(count)
    return stacks


def _group_shares(stacks: Counter[str]) -> Counter[str]:
    shares: Counter[str] = Counter()
    for stack, count in stacks.items():
        for group, markers in GROUPS.items():
            if any(marker in stack for marker in markers):
                shares[group] += count
    return shares
