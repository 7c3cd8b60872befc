"""`uv run python -m bench all` runs every part; `uv run python -m bench <part>` runs one.

Each part starts what it needs on PostgreSQL + Redis (TEST_DATABASE_URL, TEST_REDIS_URL; a fresh database
of its own, dropped afterwards), writes `bench/results/<part>.json`, and BENCHMARKS.md is written again
from every result there.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Annotated

import msgspec
import typer

from bench import burst, cli, connections, event_store, fanout, pipeline, profile, rebuild, routing, triggers
from bench.machine import describe
from bench.report import REPORT_PATH, write_report
from bench.results import RESULTS_DIR, Result, Size, save
from bench.servers import fresh_backends

# Each part is a module: `run(size, backends, work_dir) -> Measured` measures; its docstring says what. A
# part that runs programs other than Python packages names them in `TOOLS` (name: how to install it).
PARTS: dict[str, ModuleType] = {
    "pipeline": pipeline,
    "event-store": event_store,
    "rebuild": rebuild,
    "fan-out": fanout,
    "burst": burst,
    "connections": connections,
    "profile": profile,
    "cli": cli,
    "routing": routing,
    "triggers": triggers,
}

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
SizeOption = Annotated[
    Size, typer.Option(help="smoke: seconds, to check that it runs; full: the report's sizes")
]
ResultsOption = Annotated[Path, typer.Option(help="Where the JSON results and the plot go.")]
ReportOption = Annotated[Path, typer.Option(help="The Markdown report written from every result.")]


def run_part(name: str, size: Size, results_dir: Path, report_path: Path) -> Result:
    typer.echo(f"== {name} ({size})")
    started_at, started = datetime.now(UTC), time.monotonic()
    with fresh_backends() as backends, tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as work_dir:
        measured = PARTS[name].run(size, backends, Path(work_dir))
        machine = describe(backends.database_url, backends.redis_url)
    result = Result(
        part=name,
        size=size,
        started_at=started_at.isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - started, 1),
        machine=machine,
        **msgspec.structs.asdict(measured),
    )
    save(result, results_dir)
    for figure in result.figures:
        reference = (
            f"  (reference {figure.reference}: {figure.reference_value:,.1f})" if figure.reference else ""
        )
        typer.echo(f"   {figure.name}: {figure.value:,.1f} {figure.unit}{reference}")
    write_report(results_dir, report_path)
    return result


def _command(name: str) -> None:
    def command(
        size: SizeOption = Size.FULL,
        results_dir: ResultsOption = RESULTS_DIR,
        report: ReportOption = REPORT_PATH,
    ) -> None:
        run_part(name, size, results_dir, report)

    command.__doc__ = (PARTS[name].__doc__ or "").splitlines()[0]
    app.command(name)(command)


for _name in PARTS:
    _command(_name)


@app.command("all")
def run_all(
    size: SizeOption = Size.FULL, results_dir: ResultsOption = RESULTS_DIR, report: ReportOption = REPORT_PATH
) -> None:
    """Every part, one after another."""
    for name in PARTS:
        run_part(name, size, results_dir, report)
    typer.echo(f"wrote {report}")


@app.command("report")
def report_only(results_dir: ResultsOption = RESULTS_DIR, report: ReportOption = REPORT_PATH) -> None:
    """Writes BENCHMARKS.md again from the saved results, without measuring."""
    write_report(results_dir, report)


if __name__ == "__main__":
    app()
