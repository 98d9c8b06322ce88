"""Helpers the network scenarios share: running in virtual time, spread quantiles."""

from __future__ import annotations

import heapq
import importlib
import itertools
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio
import trio.testing

from protocol.attestation import AttestationId
from simulations.runner import Run
from simulations.world import NetworkParameters, World

__all__ = ["in_virtual_time", "new_world", "quantile_time"]

# trio's switch between its two ways of ordering a batch of ready tasks (private; Final there).
_SORTED_SCHEDULING = "_ALLOW_DETERMINISTIC_SCHEDULING"


def in_virtual_time(main: Callable[[], Awaitable[None]], *, seed: int) -> None:
    """Run `main` under a MockClock that jumps whenever every task sleeps.

    Trio deliberately varies the order in which ready tasks run (to flush out
    ordering bugs) with a module-level `random.Random`; seeding it, in trio's
    sorted mode, makes a run repeat exactly: same seed, same figures, in any
    process, with or without Hypothesis imported, whatever ran before. (Both
    are private to trio; its Hypothesis integration uses the same two.)
    """
    trio_run_module = importlib.import_module("trio._core._run")
    trio_run_module._r.seed(seed)
    # Importing Hypothesis (as any pytest process here does) switches trio's
    # scheduler, through trio's own Hypothesis plugin, from "maybe reverse the
    # ready batch" to "sort it by task creation, then shuffle with `_r`": the
    # same seed gave other figures under pytest than in a plain process. Use
    # the sorted mode always: it also makes the batch independent of the order
    # tasks became ready in, which trio derives in places from sets of tasks
    # (cancellations are delivered in `CancelStatus._tasks` set order, i.e. by
    # memory address), so figures no longer depend on memory layout.
    deterministic = getattr(trio_run_module, _SORTED_SCHEDULING)
    setattr(trio_run_module, _SORTED_SCHEDULING, True)
    # Timers due at one instant expire in the order of a tie-breaker that trio
    # takes from the cancel scopes' memory addresses, which differ from one
    # process to the next: a run would repeat in one process but not in
    # another. Break ties by registration order instead.
    deadlines = trio_run_module.Deadlines
    add = deadlines.add
    order = itertools.count()

    def add_in_order(self: Any, deadline: float, cancel_scope: Any) -> None:
        heapq.heappush(self._heap, (deadline, next(order), cancel_scope))
        self._active += 1

    deadlines.add = add_in_order
    try:
        trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        deadlines.add = add
        setattr(trio_run_module, _SORTED_SCHEDULING, deterministic)


def new_world(sim: Run) -> World:
    """A world with the run's seed and network parameters, and `sim.nodes` members."""
    world = World(seed=sim.seed, parameters=NetworkParameters.from_params(sim.params))
    world.add_members(sim.nodes)
    return world


def quantile_time(world: World, attestation: AttestationId, share: float, total: int) -> float:
    """Seconds from publication until `share` of `total` members stored it (inf if never)."""
    published = world.published[attestation]
    times = sorted(t - published for t in world.holders(attestation).values())
    needed = max(1, math.ceil(share * total))
    return times[needed - 1] if len(times) >= needed else math.inf
