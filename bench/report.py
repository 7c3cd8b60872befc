"""BENCHMARKS.md, the latency plot and each part's curves, written from the saved results (never edited by
hand).

The one hand-written part, `bench/improvements.md` (what profiling found and what changed, before and
after), is copied in as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bench.results import Curve, Figure, Result, load_all

ROOT = Path(__file__).parent.parent
REPORT_PATH = ROOT / "BENCHMARKS.md"
IMPROVEMENTS = Path(__file__).parent / "improvements.md"
PLOT_NAME = "latency.png"

HEADER = """# Benchmarks

Written by `uv run python -m bench all` (each part alone: `uv run python -m bench <part>`; `--size smoke`
for a seconds-long check). Every figure is measured beside its reference in the same run, so the ratio
holds on a noisy machine. Venue delays are 0 and the rate limit is lifted unless a part says otherwise, so
what is measured is the engine's own cost. Raw results: `bench/results/*.json`.
"""


def write_report(results_dir: Path, report_path: Path) -> None:
    results = load_all(results_dir)
    sections = [HEADER]
    if results:
        sections.append(_machine(results[0]))
    plot = _plot(results, results_dir / PLOT_NAME)
    for result in results:
        sections.append(_section(result))
        curves = _plot_curves(result.curves, results_dir / f"{result.part}.png")
        if curves is not None:
            sections.append(f"![{result.title}]({_relative(curves, report_path)})\n")
    if plot is not None:
        sections.append(f"## Latency distributions\n\n![Latency CDFs]({_relative(plot, report_path)})\n")
    if IMPROVEMENTS.exists():
        sections.append(IMPROVEMENTS.read_text())
    report_path.write_text("\n".join(sections))


def _machine(result: Result) -> str:
    m = result.machine
    versions = ", ".join(
        f"{k} {m[k]}" for k in ("python", "postgresql", "redis", "litestar", "sqlalchemy", "psycopg")
    )
    return f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; {versions}.\n"


def _section(result: Result) -> str:
    settings = ", ".join(f"{k}={v}" for k, v in result.settings.items())
    lines = [
        f"## {result.title}",
        "",
        f"`{result.part}`, size {result.size}, {result.started_at}, {result.duration_s:.0f} s; {settings}.",
        "",
        "| Measure | Ours | Reference (same run) | Ratio | Goal | Met |",
        "|---|---:|---|---:|---|:-:|",
    ]
    lines += [_row(f) for f in result.figures]
    if result.notes:
        lines += ["", *[f"- {note}" for note in result.notes]]
    return "\n".join(lines) + "\n"


def _row(f: Figure) -> str:
    reference = f"{f.reference}: {_number(f.reference_value)} {f.unit}" if f.reference else ""
    ratio = f"{f.ratio:.2f}x" if f.ratio is not None else ""
    met = {True: "yes", False: "no", None: ""}[f.met]
    return f"| {f.name} | {_number(f.value)} {f.unit} | {reference} | {ratio} | {f.goal or ''} | {met} |"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}".rstrip("0").rstrip(".")


def _plot(results: list[Result], path: Path) -> Path | None:
    series = [
        (f"{r.part}: {name}", samples) for r in results for name, samples in r.samples.items() if samples
    ]
    if not series:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 5))
    for label, samples in series:
        ordered = np.sort(np.asarray(samples))
        axes.plot(ordered, np.arange(1, len(ordered) + 1) / len(ordered), label=f"{label} (n={len(ordered)})")
    axes.set_xscale("log")
    axes.set_xlabel("latency (ms, log scale)")
    axes.set_ylabel("fraction of samples at or below")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _plot_curves(curves: list[Curve], path: Path) -> Path | None:
    """Each curve in a chart of its own, side by side in one image."""
    if not curves:
        return None
    plt = _pyplot()
    figure, charts = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 4), squeeze=False)
    for curve, axes in zip(curves, charts[0], strict=True):
        for label, ys in curve.series.items():
            axes.plot(curve.xs, ys, marker="o", label=label)
        if curve.log_x:
            axes.set_xscale("log", base=2)
        axes.set_xticks(curve.xs, [f"{x:g}" for x in curve.xs])
        if curve.log_y:
            axes.set_yscale("log")
        else:
            axes.set_ylim(bottom=0)
        axes.set_title(curve.title, fontsize=10)
        axes.set_xlabel(curve.x)
        axes.set_ylabel(curve.y)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _pyplot() -> Any:
    import matplotlib  # here, not at the top: a second of importing that most parts never use

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _relative(path: Path, report_path: Path) -> str:
    try:
        return str(path.resolve().relative_to(report_path.resolve().parent))
    except ValueError:
        return str(path)
