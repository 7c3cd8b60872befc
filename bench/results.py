"""What a benchmark part produces: figures, each beside its same-run reference, saved as JSON."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import msgspec

RESULTS_DIR = Path(__file__).parent / "results"


class Size(StrEnum):
    SMOKE = "smoke"  # seconds: proves the part starts and produces every figure (the test suite runs it)
    FULL = "full"  # the sizes BENCHMARKS.md reports


class Figure(msgspec.Struct, kw_only=True):
    name: str
    value: float
    unit: str
    reference: str | None = None  # what `value` is compared with, measured in the same run
    reference_value: float | None = None
    goal: str | None = None  # in words, e.g. "≥ 3x reference"
    met: bool | None = None  # whether `goal` was reached (None: no goal, or not judged at this size)

    @property
    def ratio(self) -> float | None:
        if not self.reference_value:
            return None
        return self.value / self.reference_value


class Curve(msgspec.Struct, kw_only=True):
    """A measure against a setting, one line per series (ours, a reference), plotted in the part's section."""

    title: str
    x: str  # the setting, e.g. "connections"
    y: str  # the measure and its unit, e.g. "req/s"
    xs: list[float]
    series: dict[str, list[float]]  # label -> the measure at each of `xs`
    log_x: bool = False
    log_y: bool = False


class Measured(msgspec.Struct, kw_only=True):
    """What a part returns."""

    title: str
    settings: dict[str, str | int | float]  # how it was run (writers, clients, seconds, ...)
    figures: list[Figure]
    samples: dict[str, list[float]] = {}  # latency samples in ms, for the plot
    curves: list[Curve] = []  # drawn side by side in one chart, `<part>.png`
    notes: list[str] = []


class Result(Measured, kw_only=True):
    """What is saved: the part's figures, with when, how long and on what machine."""

    part: str
    size: Size
    started_at: str
    duration_s: float
    machine: dict[str, str]


def save(result: Result, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.part}.json"
    path.write_bytes(msgspec.json.format(msgspec.json.encode(result)))
    return path


def load_all(directory: Path = RESULTS_DIR) -> list[Result]:
    return [msgspec.json.decode(p.read_bytes(), type=Result) for p in sorted(directory.glob("*.json"))]
