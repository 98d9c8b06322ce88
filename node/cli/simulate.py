"""`trustnode simulate`: run a scenario (or a sweep) of many real nodes in virtual time."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from multiprocessing import get_context
from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from node.cli.common import EXIT_INVALID, EXIT_UNAVAILABLE, console, fail
from node.cli.render import line
from simulations.dask_sweep import DaskUnavailableError, open_dask
from simulations.interrupt import EXIT_INTERRUPTED, is_interrupt, quiet_interrupt
from simulations.params import check_nodes
from simulations.runner import (
    SCENARIOS,
    Result,
    number_text,
    parse_params,
    phase_line,
    run_scenario,
)
from simulations.sweep import grid, run_sweep, write_sweep


def _pairs(items: tuple[str, ...], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{what} {item!r}: expected key=value")
        pairs[key.strip()] = value.strip()
    return pairs


def _list() -> None:
    table = Table("scenario", "nodes", "what it shows", "parameters (defaults)", show_lines=True)
    for s in SCENARIOS.values():
        params = ", ".join(f"{k}={v}" for k, v in s.defaults.items())
        table.add_row(s.name, str(s.default_nodes or "-"), s.summary, params)
    console.print(table)


def _summary(result: Result) -> None:
    table = Table(title=f"{result.scenario}: {result.nodes} nodes, seed {result.seed}, "
                        f"{result.wall_s:.1f} s", title_justify="left")  # fmt: skip
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("unit")
    for name, entry in result.figures.items():
        table.add_row(name, number_text(entry["value"], significant=4), entry["unit"])
    console.print(table)
    for claim in result.claims:
        mark = "[green]holds[/]" if claim["holds"] else "[red]FAILS[/]"
        detail = f" ({claim['detail']})" if claim["detail"] else ""
        console.print(f"  {mark}  {claim['name']}{detail}")
    if result.phases:
        console.print("  wall time by phase:")
        for phase in result.phases:
            console.print(f"    {phase_line(phase)}")


def _one(scenario: str, nodes: int | None, seed: int, params: dict[str, str],
         out: Path | None, as_json: bool) -> Result:  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, transient=True, disable=as_json) as bar:
        task = bar.add_task(scenario, total=1.0, note="")
        result = run_scenario(
            scenario, nodes=nodes, seed=seed, params=params,
            progress=lambda done, note: bar.update(task, completed=done, note=note),
        )  # fmt: skip
    if out is not None:
        from simulations.report import write_outputs  # matplotlib: only here

        written = write_outputs(result, out)
        if not as_json:
            names = ", ".join(p.name for p in written)
            console.print(line("[dim]wrote {names} to {out}[/]", names=names, out=str(out)))
    return result


@click.command()
@click.argument("scenario", required=False)
@click.option("--nodes", type=click.IntRange(2, 100_000), help="Default: the scenario's.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--param", "params", multiple=True, help="key=value; repeatable (see --list).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Write results.json, series.csv, plots and report.md here.")  # fmt: skip
@click.option("--sweep", "sweeps", multiple=True, help="key=v1,v2,... : a grid; repeatable.")
@click.option("--seeds", default="1", show_default=True, help="Seeds of a sweep: 1,2,3.")
@click.option("--workers", type=click.IntRange(1, 256), default=os.cpu_count() or 1,
              show_default=True, help="Processes of a sweep.")  # fmt: skip
@click.option("--dask", "dask_address", metavar="ADDRESS",
              help="Run the sweep on Dask: a scheduler (tcp://host:8786) or 'local'.")  # fmt: skip
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json instead of tables.")
def simulate(
    scenario: str | None, nodes: int | None, seed: int, params: tuple[str, ...],
    out: Path | None, sweeps: tuple[str, ...], seeds: str, workers: int,
    dask_address: str | None, list_only: bool, as_json: bool,
) -> None:  # fmt: skip
    """Simulate a community of real nodes (seeded, virtual time): a scenario or a sweep."""
    if list_only or scenario is None:
        _list()
        return
    if scenario not in SCENARIOS:
        fail(f"no scenario {scenario!r}; `trustnode simulate --list` shows them")
    fixed = _pairs(params, "--param")
    _check_dask_usage(dask_address, sweeping=bool(sweeps))
    try:
        chosen = SCENARIOS[scenario]  # every bad parameter fails here, before a run
        check_nodes(scenario, nodes or chosen.default_nodes, parse_params(chosen, fixed))
        if sweeps:
            _sweep(scenario, nodes, fixed, _pairs(sweeps, "--sweep"), seeds, workers, out,
                   dask_address)  # fmt: skip
            return
        result = _one(scenario, nodes, seed, fixed, out, as_json)
    except ValueError as exc:
        fail(str(exc))
    except BaseException as exc:
        if not is_interrupt(exc):
            raise
        fail("interrupted: the simulation stopped, nothing was written", EXIT_INTERRUPTED)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        _summary(result)
    if not result.claims_hold:
        raise SystemExit(EXIT_INVALID)


def _check_dask_usage(dask_address: str | None, *, sweeping: bool) -> None:
    """`--dask` runs sweeps only, and sizes its own workers: an explicit --workers is a mistake."""
    if dask_address is None:
        return
    if not sweeping:
        fail("--dask runs a sweep: add --sweep key=v1,v2")
    source = click.get_current_context().get_parameter_source("workers")
    if source is not click.core.ParameterSource.DEFAULT:
        fail("--dask and --workers exclude each other: Dask sizes its own workers")


@contextmanager
def _executor(workers: int, dask_address: str | None) -> Iterator[tuple[Executor, str]]:
    """A sweep's executor and where it runs: local processes, or Dask (exit 3 if absent)."""
    with ExitStack() as stack:
        if dask_address is None:
            pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=get_context("spawn"), initializer=quiet_interrupt
            )
            try:
                yield pool, f"{workers} processes"
            except BaseException:
                # Ctrl-C: the workers exit on their own SIGINT; do not wait for queued runs.
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
            return
        try:
            dask = stack.enter_context(open_dask(dask_address))
        except DaskUnavailableError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
        yield dask.executor, dask.where


def _sweep(scenario: str, nodes: int | None, fixed: dict[str, str], swept: dict[str, str],
           seeds: str, workers: int, out: Path | None,
           dask_address: str | None) -> None:  # fmt: skip
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        fail(f"--seeds {seeds!r}: expected numbers like 1,2,3")
    values = {k: [v.strip() for v in text.split(",") if v.strip()] for k, text in swept.items()}
    tasks = grid(scenario, nodes=nodes, seeds=seed_list, fixed=fixed, sweeps=values)
    chosen = SCENARIOS[scenario]
    for each in tasks:  # every swept value is checked before the first run starts
        check_nodes(scenario, nodes or chosen.default_nodes, parse_params(chosen, each.params))
    with (
        _executor(workers, dask_address) as (pool, where),
        Progress(console=console, transient=True) as bar,
    ):
        task = bar.add_task(f"{len(tasks)} runs on {escape(where)}", total=len(tasks))
        results = run_sweep(tasks, pool, lambda done, _: bar.update(task, completed=done))
    folder = out or Path(f"sweep-{scenario}")
    written = write_sweep(results, list(values), folder)
    console.print((folder / "sweep.md").read_text(encoding="utf-8"))
    names = ", ".join(p.name for p in written)
    console.print(line("[dim]wrote {names} to {out}[/]", names=names, out=str(folder)))
