"""Sweeps on Dask: a running cluster (`--dask tcp://host:8786`) or a `LocalCluster` here.

A sweep is a list of independent, CPU-bound runs, so any engine that runs Python
functions on many machines will do; Dask's is `distributed.Client.get_executor()`, a
`concurrent.futures.Executor` whose futures complete as the Dask futures do. So
`run_sweep` runs unchanged on it, and its progress counts finished Dask tasks exactly
as it counts a local process pool's.

- `--dask local` starts a `LocalCluster` on this machine: one single-threaded worker
  process per core (runs hold the GIL, so threads would share one core), on loopback,
  without the dashboard (its HTTP server on a free port). It is closed, worker
  processes and all, when the sweep ends or fails.
- `--dask ADDRESS` connects to a running scheduler and leaves the cluster running;
  leaving early (an error, Ctrl-C) cancels the tasks not yet finished. The workers
  import `simulations.sweep.run_task` by name, so each needs trustnode installed; its
  version (the package's version string, not its code) is checked before any task is
  sent, as a run on other code would silently measure something else.

Dask is an optional extra (`pip install 'trustnode[dask]'`), imported only here and
only when asked for. A malformed address is a `ValueError` (bad input); every other
failure to get an engine — Dask not installed, a scheduler that does not answer within
`CONNECT_TIMEOUT_S`, no workers, workers on other code — is a `DaskUnavailableError`
of one line, never a hang.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from protocol.errors import TrustnodeError

__all__ = ["CONNECT_TIMEOUT_S", "LOCAL", "DaskEngine", "DaskUnavailableError", "open_dask"]

LOCAL = "local"
# How long to wait for a scheduler to answer, and then for its first worker.
CONNECT_TIMEOUT_S = 10.0
# How long a local cluster's worker processes may take to start (a few seconds, more
# on a busy machine).
LOCAL_START_TIMEOUT_S = 60.0


class DaskUnavailableError(TrustnodeError):
    """No Dask engine to run the sweep on; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class DaskEngine:
    """An executor on a Dask cluster, and where it runs (for the progress line)."""

    executor: Executor
    where: str
    workers: int


@contextmanager
def open_dask(
    address: str, *, connect_timeout_s: float | None = None, processes: bool = True
) -> Iterator[DaskEngine]:
    """An executor on the scheduler at `address`, or on a new `LocalCluster` for `"local"`.

    `processes=False` gives the local cluster thread workers (quick to start; for tests).
    On leaving, tasks still pending are cancelled, the client closed and a local cluster
    shut down.
    """
    distributed = _import_distributed()
    timeout_s = CONNECT_TIMEOUT_S if connect_timeout_s is None else connect_timeout_s
    with ExitStack() as stack:
        if address == LOCAL:
            client = stack.enter_context(_local_client(distributed, processes=processes))
            where = "a local Dask cluster"
        else:
            client = stack.enter_context(_remote_client(distributed, address, timeout_s))
            where = f"Dask at {address}"
        workers = _checked_workers(client, timeout_s)
        # pure=False: a run reports its wall time, so two equal tasks are two runs.
        executor = client.get_executor(pure=False)
        stack.callback(executor.shutdown, wait=False)  # cancels what has not finished
        yield DaskEngine(executor=executor, where=f"{where} ({workers} workers)", workers=workers)


def _import_distributed() -> ModuleType:
    try:
        import distributed  # an optional extra: imported only when asked for
    except ImportError as exc:
        raise DaskUnavailableError(
            f"Dask is not installed ({exc}): pip install 'trustnode[dask]'"
        ) from exc
    return distributed


@contextmanager
def _local_client(distributed: ModuleType, *, processes: bool) -> Iterator[Any]:
    """A client of a new local cluster, closed (workers and all) however the block ends.

    The scheduler starts first and the workers after, once the cluster is in hand: a
    Ctrl-C while a worker process starts then closes the cluster, instead of leaving
    one half-built to fail with a traceback at exit.
    """
    workers = os.cpu_count() or 1
    try:
        cluster = distributed.LocalCluster(
            n_workers=0,
            threads_per_worker=1,
            processes=processes,
            host="127.0.0.1" if processes else None,  # threads talk in process (inproc://)
            dashboard_address=None,
            # Without a dashboard the scheduler still serves HTTP (health, metrics), by
            # default on port 8787, warning when a second cluster finds it taken.
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
    except (OSError, RuntimeError) as exc:  # RuntimeError: "Scheduler failed to start."
        raise DaskUnavailableError(f"cannot start a local Dask cluster: {exc}") from exc
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        cluster.scale(workers)
        try:
            client.wait_for_workers(workers, timeout=LOCAL_START_TIMEOUT_S)
        except TimeoutError as exc:
            raise DaskUnavailableError(
                f"the local Dask cluster's {workers} workers did not start"
                f" in {LOCAL_START_TIMEOUT_S:g} s"
            ) from exc
        yield client


@contextmanager
def _remote_client(distributed: ModuleType, address: str, timeout_s: float) -> Iterator[Any]:
    _check_address(distributed, address)
    try:
        client = distributed.Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise DaskUnavailableError(f"no Dask scheduler at {address}: {exc}") from exc
    with client:
        yield client


def _check_address(distributed: ModuleType, address: str) -> None:
    """Refuse a malformed address (bad input, not an absent scheduler) before connecting.

    A `Client` that fails in its constructor for another reason than the network lingers
    until exit, then prints a traceback while it closes: so those reasons are checked here.
    """
    try:
        scheme, _ = distributed.comm.parse_address(address)
        _, port = distributed.comm.get_address_host_port(address)
    except ValueError as exc:
        raise ValueError(f"Dask address {address!r}: {exc}") from exc
    if not 0 < port < 2**16:
        raise ValueError(f"Dask address {address!r}: port {port} out of range")
    security = distributed.Security().get_connection_args("client")
    if scheme == "tls" and security["ssl_context"] is None:
        raise ValueError(f"Dask address {address!r}: TLS needs Dask's distributed.comm.tls.*")


def _checked_workers(client: Any, timeout_s: float) -> int:
    """How many workers there are, once there is one, all running our trustnode."""
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError as exc:  # Dask's own TimeoutError is this one since Python 3.11
        raise DaskUnavailableError(
            f"the Dask scheduler has no workers after {timeout_s:g} s"
        ) from exc
    ours = importlib.metadata.version("trustnode")
    try:
        theirs: dict[str, str] = client.run(importlib.metadata.version, "trustnode")
    except importlib.metadata.PackageNotFoundError as exc:
        raise DaskUnavailableError(
            "a Dask worker has no trustnode installed: pip install trustnode there"
        ) from exc
    other = {w: v for w, v in theirs.items() if v != ours}
    if other:
        worker, version = sorted(other.items())[0]
        raise DaskUnavailableError(
            f"Dask worker {worker} runs trustnode {version}, not {ours} as here"
        )
    return len(theirs)
