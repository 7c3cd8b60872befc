"""Each benchmark part starts, measures on a tiny size and writes its result (the figures themselves are
BENCHMARKS.md's business, not the test run's)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import PARTS
from bench.results import Size, load_all
from tests.services import require_tool


@pytest.mark.timeout(300)
@pytest.mark.parametrize("part", list(PARTS))
def test_each_benchmark_part_runs_and_reports_on_a_tiny_size(part: str, tmp_path: Path) -> None:
    for tool, install in getattr(PARTS[part], "TOOLS", {}).items():
        require_tool(tool, install)
    report = tmp_path / "BENCHMARKS.md"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            part,
            "--size",
            Size.SMOKE,
            "--results-dir",
            tmp_path,
            "--report",
            report,
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    (result,) = load_all(tmp_path)
    assert result.part == part and result.size is Size.SMOKE
    assert result.figures and all(math.isfinite(f.value) for f in result.figures)
    # Speed goals are judged on the full size only; what a smoke run judges (nothing lost, limits kept) holds.
    assert [f.name for f in result.figures if f.met is False] == []
    assert result.machine["cores"] and result.machine["postgresql"]
    assert f"## {result.title}" in report.read_text()
    if result.samples:
        assert (tmp_path / "latency.png").stat().st_size > 0
    if result.curves:
        assert (tmp_path / f"{part}.png").stat().st_size > 0
        assert f"]({part}.png)" in report.read_text()
