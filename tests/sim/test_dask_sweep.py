"""Sweeps on Dask, for real: a `LocalCluster` of worker processes; schedulers that are not there.

Dask is in the `test` extra, so these never skip: a missing `distributed` fails the import.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import distributed
import pytest
from click.testing import CliRunner
from rich.console import Console

import node.cli.simulate
import simulations.dask_sweep
from node.cli import cli
from simulations.dask_sweep import LOCAL, DaskEngine, DaskUnavailableError, open_dask
from simulations.sweep import grid, run_sweep, run_task

# A two-task sweep of small, quick runs (a fresh node joining a community of 50).
TASKS = grid("join", nodes=6, seeds=[1, 2], fixed={"community": "50"}, sweeps={})


def _children() -> set[str]:
    """This process's child processes (every thread's), from /proc: "pid command line".

    Not multiprocessing's resource tracker, started with the first spawned process
    (by any test) and meant to live as long as this process.
    """
    pids: list[str] = []
    for thread in Path(f"/proc/{os.getpid()}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # the thread ended meanwhile
            pids += (thread / "children").read_text().split()
    found = set()
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):  # the process ended meanwhile
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            found.add(f"{pid} {command.decode(errors='replace')}")
    return {c for c in found if "multiprocessing.resource_tracker" not in c}


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A running Dask cluster of two single-threaded worker processes, on loopback."""
    before = _children()
    with distributed.LocalCluster(  # type: ignore[no-untyped-call]  # LocalCluster has no hints
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:  # fmt: skip
        address: str = cluster.scheduler_address
        yield address
    assert _children() <= before  # the worker processes went with the cluster


@pytest.fixture
def closed_address() -> Iterator[str]:
    """A loopback port that is bound but not listening: every connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"tcp://127.0.0.1:{held.getsockname()[1]}"


@pytest.mark.slow
def test_a_two_task_sweep_runs_on_a_dask_cluster(scheduler: str) -> None:
    progress: list[tuple[int, int]] = []
    with open_dask(scheduler) as engine:
        assert engine.workers == 2
        assert engine.where == f"Dask at {scheduler} (2 workers)"
        results = run_sweep(TASKS, engine.executor, lambda *step: progress.append(step))
    assert progress == [(1, 2), (2, 2)]  # one step per finished Dask future
    assert [r.seed for r in results] == [1, 2]  # in task order, whichever finished first
    assert all(r.claims_hold for r in results)
    # The figures of a local process pool's run, to the last digit. (Not of a run in this
    # process: importing Hypothesis makes trio schedule differently, if as repeatably.)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        assert results[0].figures == pool.submit(run_task, TASKS[0]).result()["figures"]


@pytest.mark.slow
def test_simulate_sweeps_on_a_dask_scheduler(scheduler: str, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["simulate", "join", "--nodes", "6", "--param", "community=50", "--out", str(out),
            "--sweep", "bandwidth_kbps=500,2000", "--dask", scheduler]  # fmt: skip
    ran = CliRunner().invoke(cli, args)
    assert ran.exit_code == 0, ran.output
    assert "| 500.0 | 1 | 1 |" in (out / "sweep.md").read_text()
    assert len((out / "sweep.csv").read_text().splitlines()) == 3


@pytest.mark.slow
def test_dask_local_starts_a_cluster_and_closes_it() -> None:
    before = _children()
    with open_dask(LOCAL, processes=False) as engine:  # threads: the same path, quick to start
        assert engine.workers == (os.cpu_count() or 1)
        assert engine.where.startswith("a local Dask cluster")
        [result] = run_sweep(TASKS[:1], engine.executor)
    assert result.seed == 1
    assert _children() <= before


@pytest.mark.slow
def test_an_absent_scheduler_is_one_error_in_bounded_time(closed_address: str) -> None:
    start = time.monotonic()
    expected = f"^no Dask scheduler at {re.escape(closed_address)}: "
    with (
        pytest.raises(DaskUnavailableError, match=expected),
        open_dask(closed_address, connect_timeout_s=0.5),
    ):
        pass
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    "address", ["nowhere:", "tcp://127.0.0.1", "tcp://h:99999", "gopher://h:1", "tls://h:1"]
)
def test_a_malformed_address_is_bad_input(address: str) -> None:
    expected = f"^Dask address {re.escape(repr(address))}: "
    with pytest.raises(ValueError, match=expected), open_dask(address):
        pass


@pytest.mark.slow
def test_simulate_without_a_scheduler_exits_3_with_one_line(
    closed_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(simulations.dask_sweep, "CONNECT_TIMEOUT_S", 0.5)
    args = ["simulate", "join", "--sweep", "community=50", "--dask", closed_address]
    ran = CliRunner().invoke(cli, args)
    assert ran.exit_code == 3
    [line] = ran.output.splitlines()  # stdout and stderr: one line in all
    assert line.startswith(f"trustnode: no Dask scheduler at {closed_address}: ")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2"], "--dask and --workers exclude each other"),
        (["--seed", "1"], "--dask runs a sweep: add --sweep"),
    ],
)
def test_dask_with_workers_or_without_a_sweep_is_a_usage_error(
    extra: list[str], message: str
) -> None:
    sweep = [] if "--seed" in extra else ["--sweep", "community=50,100"]
    ran = CliRunner().invoke(cli, ["simulate", "join", *sweep, "--dask", LOCAL, *extra])
    assert ran.exit_code == 2
    assert ran.output.startswith(f"trustnode: {message}")


@pytest.mark.slow
def test_a_scheduler_without_workers_is_one_error_in_bounded_time() -> None:
    with distributed.LocalCluster(  # type: ignore[no-untyped-call]  # LocalCluster has no hints
        n_workers=0, processes=True, host="127.0.0.1",
        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    ) as cluster:  # fmt: skip
        start = time.monotonic()
        with (
            pytest.raises(DaskUnavailableError, match=r"has no workers after 0\.5 s$"),
            open_dask(cluster.scheduler_address, connect_timeout_s=0.5),
        ):
            pass
        assert time.monotonic() - start < 5


class _Workers:
    """A client's two calls that `_checked_workers` makes, answered as given workers would."""

    def __init__(self, versions: dict[str, str | None]) -> None:
        self.versions = versions

    def wait_for_workers(self, n_workers: int, timeout: float | None = None) -> None:
        assert len(self.versions) >= n_workers

    def run(self, function: Callable[[str], str], package: str) -> dict[str, str]:
        assert function is importlib.metadata.version
        if None in self.versions.values():
            raise importlib.metadata.PackageNotFoundError(package)
        return {w: v for w, v in self.versions.items() if v is not None}


def test_workers_must_run_our_trustnode() -> None:
    ours = importlib.metadata.version("trustnode")
    check = simulations.dask_sweep._checked_workers
    assert check(_Workers({"tcp://a:1": ours, "tcp://b:1": ours}), 1.0) == 2
    wrong = r"^Dask worker tcp://b:1 runs trustnode 0\.0\.1, not "
    with pytest.raises(DaskUnavailableError, match=wrong):
        check(_Workers({"tcp://a:1": ours, "tcp://b:1": "0.0.1"}), 1.0)
    with pytest.raises(DaskUnavailableError, match=r"^a Dask worker has no trustnode installed"):
        check(_Workers({"tcp://a:1": ours, "tcp://b:1": None}), 1.0)


@pytest.mark.slow
def test_the_progress_line_shows_an_address_as_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An address is the member's text: in a terminal's progress bar it is data, not markup."""

    @contextlib.contextmanager
    def engine(address: str) -> Iterator[DaskEngine]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            yield DaskEngine(executor=pool, where=f"Dask at {address} (1 workers)", workers=1)

    screen = io.StringIO()
    monkeypatch.setattr(node.cli.simulate, "open_dask", engine)
    monkeypatch.setattr(node.cli.simulate, "console", Console(file=screen, force_terminal=True))
    args = ["simulate", "join", "--nodes", "4", "--sweep", "community=20",
            "--dask", "tcp://[/x]:1", "--out", str(tmp_path)]  # fmt: skip
    ran = CliRunner().invoke(cli, args)
    assert ran.exit_code == 0, ran.output
    assert "Dask at tcp://[/x]:1 (1 workers)" in screen.getvalue()
