"""A run's outputs: results.json, series.csv, one PNG per plot, and report.md embedding them.

Plots are drawn with matplotlib's Agg backend (no screen needed). Series named
`group/label` share the plot of `group`, labelled by the scenario's `axis`.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt  # the backend is chosen first

from simulations.runner import Result, delivery_rate, number_text

__all__ = ["write_outputs"]


def _groups(result: Result) -> dict[str, dict[str, list[tuple[float, float]]]]:
    grouped: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(dict)
    for name, points in result.series.items():
        group, _, label = name.partition("/")
        grouped[group][label or group] = points
    return grouped


def _plot(
    group: str, lines: dict[str, list[tuple[float, float]]], result: Result, path: Path
) -> None:
    axis = result.axes.get(group, {"title": group, "x": "virtual time (s)", "y": ""})
    figure, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for label, points in lines.items():
        if points:
            xs, ys = zip(*points, strict=True)
            style = "-o" if len(points) <= 12 else "-"
            ax.plot(xs, ys, style, label=label, linewidth=1.6, markersize=4)
    ax.set_title(f"{axis['title']}\n({result.scenario}, {result.nodes} nodes, seed {result.seed})",
                 fontsize=10)  # fmt: skip
    ax.set_xlabel(axis.get("x", ""))
    ax.set_ylabel(axis.get("y", ""))
    ax.grid(visible=True, alpha=0.3)
    if len(lines) > 1:
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _markdown(result: Result, plots: list[str]) -> str:
    lines = [
        f"# Scenario `{result.scenario}`",
        "",
        f"{result.nodes} nodes, seed {result.seed}, trustnode {result.version}, "
        f"{result.wall_s:.1f} s of wall time.",
        "",
        "## Claims",
        "",
    ]
    for claim in result.claims:
        mark = "holds" if claim["holds"] else "**FAILS**"
        detail = f" ({claim['detail']})" if claim["detail"] else ""
        lines.append(f"- {claim['name']}: {mark}{detail}")
    lines += ["", "## Figures", "", "| figure | value | unit | note |", "|---|---|---|---|"]
    for name, entry in result.figures.items():
        shown = number_text(entry["value"], significant=6)
        lines.append(f"| {name} | {shown} | {entry['unit']} | {entry['note']} |")
    if result.phases:
        lines += ["", "## Where the wall time went", ""]
        lines += ["| phase | wall time (s) | deliveries | deliveries per wall second |"]
        lines += ["|---|---|---|---|"]
        for phase in result.phases:
            lines.append(
                f"| {phase['name']} | {phase['wall_s']:.1f} | {phase['deliveries']:,} | "
                f"{delivery_rate(phase)} |"
            )
    lines += ["", "## Parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in result.params.items()]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{Path(name).stem}]({name})" for name in plots]
    lines += [
        "",
        "Reproduce: `trustnode simulate "
        + f"{result.scenario} --nodes {result.nodes} --seed {result.seed}"
        + "".join(f" --param {k}={v}" for k, v in result.params.items())
        + "`",
    ]
    return "\n".join(lines) + "\n"


def write_outputs(result: Result, folder: Path) -> list[Path]:
    """Write every output of `result` into `folder` (created); return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "results.json", folder / "series.csv"]
    written[0].write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    with written[1].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["series", "x", "y"])
        for name, points in result.series.items():
            writer.writerows([name, f"{x:.6g}", f"{y:.6g}"] for x, y in points)
    plots = []
    for group, lines in _groups(result).items():
        name = f"{group}.png"
        _plot(group, lines, result, folder / name)
        plots.append(name)
        written.append(folder / name)
    (folder / "report.md").write_text(_markdown(result, plots), encoding="utf-8")
    written.append(folder / "report.md")
    return written
