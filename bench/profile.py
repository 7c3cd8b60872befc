"""Profile: where each process's time goes under load (py-spy on the API, the worker and the projector)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from pathlib import Path

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
        record = [PY_SPY, "record", "--duration", str(seconds), "--rate", str(SAMPLE_RATE), "--nonblocking"]
        spies = [
            subprocess.Popen(
                [*record, "--pid", str(pid), "--format", "raw", "--output", str(outputs[role])],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for role, pid in roles.items()
        ]
        # Load from the start of sampling to its end (a little longer, so no sample sees it idle).
        rate = asyncio.run(sustained_rate(backends, engine.urls, workers=1, seconds=seconds + 2, warmup_s=1))
        for spy in spies:
            spy.wait(timeout=seconds + 30)
    figures = [Figure(name="orders/s while profiled", value=rate, unit="orders/s")]
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
            "py-spy samples each process's Python stacks while closed-loop submitters keep the pipeline "
            "busy (venue delays 0). A sample counts in every group it has a frame of, so the groups of one "
            "process overlap (SQLAlchemy and psycopg run inside the event store's appends).",
            "For a flame graph of one process: `py-spy record --pid <pid> -o flame.svg` while `python -m "
            "bench pipeline` runs.",
        ],
    )


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
