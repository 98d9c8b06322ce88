"""Parameter sweeps: a grid of parameters x seeds, run on any `concurrent.futures.Executor`.

Locally `trustnode simulate SCENARIO --sweep k=a,b --seeds 1,2,3 --workers 2` uses
a `ProcessPoolExecutor` (one scenario per process at a time: runs are CPU-bound
and independent). A larger sweep runs unchanged on a cluster by passing another
executor: `--dask ADDRESS` (or `--dask local`) passes Dask's
`distributed.Client(...).get_executor()` (see `simulations.dask_sweep`, tested on a
`LocalCluster` of worker processes); from Python, a Ray executor adapter will do as
well. Each task is a small, picklable `Task`, and `run_task` (a module-level
function, imported by name on the workers) returns plain JSON, so nothing else needs
to cross the wire.
"""

from __future__ import annotations

import csv
import itertools
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulations.runner import Result, run_scenario

__all__ = ["Task", "grid", "run_sweep", "run_task", "write_sweep"]


@dataclass(frozen=True)
class Task:
    """One run of a sweep."""

    scenario: str
    nodes: int | None
    seed: int
    params: Mapping[str, str] = field(default_factory=dict)


def grid(
    scenario: str, *, nodes: int | None, seeds: Sequence[int], fixed: Mapping[str, str],
    sweeps: Mapping[str, Sequence[str]],
) -> list[Task]:  # fmt: skip
    """Every combination of the swept values, for every seed."""
    keys = list(sweeps)
    tasks = []
    for values in itertools.product(*(sweeps[k] for k in keys)):
        for seed in seeds:
            params = {**fixed, **dict(zip(keys, values, strict=True))}
            tasks.append(Task(scenario=scenario, nodes=nodes, seed=seed, params=params))
    return tasks


def run_task(task: Task) -> dict[str, Any]:
    """Run one task (in a worker process); returns the result as JSON."""
    result = run_scenario(task.scenario, nodes=task.nodes, seed=task.seed, params=task.params)
    return result.to_json()


def run_sweep(
    tasks: Sequence[Task], executor: Executor,
    progress: Callable[[int, int], None] | None = None,
) -> list[Result]:  # fmt: skip
    """Run `tasks` on `executor`; results come back in task order.

    `progress(done, total)` is called as each future completes, in completion order:
    for a process pool as a process returns, for Dask's executor as the Dask future
    finishes on its worker.
    """
    futures = {executor.submit(run_task, task): n for n, task in enumerate(tasks)}
    results: list[Result | None] = [None] * len(tasks)
    for done, future in enumerate(as_completed(futures), start=1):
        data = future.result()
        data["series"] = {k: [tuple(p) for p in v] for k, v in data["series"].items()}
        results[futures[future]] = Result(**data)
        if progress is not None:
            progress(done, len(tasks))
    return [r for r in results if r is not None]


def write_sweep(results: Sequence[Result], swept: Sequence[str], folder: Path) -> list[Path]:
    """sweep.csv (a row per run) and sweep.md (means over seeds per parameter combination)."""
    folder.mkdir(parents=True, exist_ok=True)
    figures = sorted({name for r in results for name in r.figures})
    table = folder / "sweep.csv"
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seed", *swept, *figures, "claims_hold", "wall_s"])
        for r in results:
            row = [r.seed, *(r.params[k] for k in swept)]
            row += [r.figures.get(f, {}).get("value", "") for f in figures]
            writer.writerow([*row, r.claims_hold, r.wall_s])
    groups: dict[tuple[Any, ...], list[Result]] = defaultdict(list)
    for r in results:
        groups[tuple(r.params[k] for k in swept)].append(r)
    lines = [
        f"# Sweep of `{results[0].scenario}` over {', '.join(swept)}" if results else "# Sweep",
        "",
        "Means over seeds; `claims` counts the runs whose claims all held.",
        "",
        "| " + " | ".join([*swept, "runs", "claims", *figures]) + " |",
        "|" + "---|" * (len(swept) + 2 + len(figures)),
    ]
    for key, runs in groups.items():
        means = [
            f"{statistics.fmean(r.figures[f]['value'] for r in runs if f in r.figures):.4g}"
            if any(f in r.figures for r in runs) else ""
            for f in figures
        ]  # fmt: skip
        held = sum(r.claims_hold for r in runs)
        lines.append("| " + " | ".join([*map(str, key), str(len(runs)), str(held), *means]) + " |")
    summary = folder / "sweep.md"
    summary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [table, summary]
