"""CLI start: wall time of `order-engine --help` and of `projections status` on an empty log.

Each command runs as a user runs it, a new process each time, and the median of several runs is taken
after one that writes Python's bytecode cache (as any first run does on a user's machine; the figures are
those of every later run). `projections status` runs against an empty, migrated log on SQLite and on
PostgreSQL + Redis. The reference is the same interpreter importing every module of the engine up front,
as the CLI did before it imported each command's modules when the command runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.results import Figure, Measured, Size
from bench.servers import Backends
from migrations.run import upgrade_to_head

RUNS = {Size.SMOKE: 1, Size.FULL: 9}
GOAL_S = 1.0
ORDER_ENGINE = str(Path(sys.executable).parent / "order-engine")
# What `engine.cli` imported at start before: the app, the composition root, metrics, migrations, the demo.
EVERYTHING = "import engine.cli, api.app, engine.services, engine.metrics, migrations.run, engine.demo"


def run(size: Size, backends: Backends, work_dir: Path) -> Measured:
    runs = RUNS[size]
    judged = size is Size.FULL
    load_before = os.getloadavg()[0]
    sqlite_url = f"sqlite:///{work_dir / 'order-engine.db'}"
    upgrade_to_head(sqlite_url)
    sqlite = {"DATABASE_URL": sqlite_url}
    postgres = {"DATABASE_URL": backends.database_url, "REDIS_URL": backends.redis_url}
    everything = _median_s([sys.executable, "-c", EVERYTHING], {}, runs, work_dir)
    commands = [
        ("order-engine --help", ["--help"], {}),
        ("order-engine projections status, empty log, SQLite", ["projections", "status"], sqlite),
        ("order-engine projections status, empty log, PostgreSQL", ["projections", "status"], postgres),
    ]
    figures = []
    for name, arguments, env in commands:
        seconds = _median_s([ORDER_ENGINE, *arguments], env, runs, work_dir)
        figures.append(
            Figure(
                name=name,
                value=seconds,
                unit="s",
                reference="importing the whole engine at start, as before",
                reference_value=everything,
                goal=f"< {GOAL_S:g} s",
                met=seconds < GOAL_S if judged else None,
            )
        )
    return Measured(
        title="CLI start time",
        settings={"runs (median)": runs},
        figures=figures,
        notes=[
            "Wall time of a new process each run, after one run that writes the bytecode cache.",
            "A ratio below 1 is faster than the reference.",
            f"Machine load (1-minute load average) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
            f"on {os.cpu_count()} cores: start time is import time, and import time is CPU time.",
            "`projections status` is almost all imports: SQLAlchemy's asyncio extension (it loads the ORM), "
            "psycopg, redis and structlog; running it takes about 0.05 s.",
        ],
    )


def _median_s(command: list[str], settings: dict[str, str], runs: int, work_dir: Path) -> float:
    # The engine's variables come only from `settings`; the bytecode cache is written as it is for users.
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "PYTHONDONTWRITEBYTECODE")
    } | settings
    durations = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=work_dir, check=True, capture_output=True, timeout=120)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations[1:])  # the first run writes the bytecode cache
