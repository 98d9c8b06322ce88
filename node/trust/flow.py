"""Yes/no trust by capacity flow: Advogato acceptance and independent vouch paths.

Graded walk scores rank well but leak a few identities per attack edge when an
identity farm befriends the viewer's closest contacts. For yes/no decisions
(is this claim certified? does this member get a relay quota?) flow is
stricter: every accepted member consumes one unit of flow from the viewer,
and a node can pass on only as much as its capacity, so an identity farm gets
at most the capacity of the confused members that vouch for it, however large
it is (Levien's Advogato metric; SumUp for votes).

**Acceptance** (`accepted_members`): capacities fall with the BFS distance
from the viewer over vouches of at least `min_weight`. By default (Levien's
rule) the viewer's capacity is the number of members it reaches, and each
level's capacity is the previous one divided by the mean out-degree (at least
2, rounded up), never below 1; `capacities` gives an explicit schedule instead (the
research note used 800, 200, 200, 50, 12, 4, 2, 1 for 1000 members). Each node is split into in
and out halves joined by an edge of capacity c - 1, and every in half has a
unit edge to the sink; a member is accepted when its unit edge carries flow.
Members the viewer distrusts get capacity 0.

**Independent paths** (`independent_paths`): the number of vouch chains from
the viewer to a set of targets that share no member (vertex-disjoint, Menger),
with the chains themselves as the explanation. Evidence that all arrives
through one member counts once (cargo-crev #45's request).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph

from node.trust.graph import IndexArray
from node.trust.walk import RandomWalk

__all__ = [
    "ADVOGATO_CAPACITIES",
    "FlowAcceptance",
    "FlowParameters",
    "IndependentPaths",
    "accepted_members",
    "independent_paths",
]

ADVOGATO_CAPACITIES = (800, 200, 200, 50, 12, 4, 2, 1)
"""Capacity by distance for a community of 1000 (the research note's schedule)."""

_UNBOUNDED = 1 << 30


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowParameters:
    """Knobs of flow acceptance."""

    capacities: tuple[int, ...] | None = None  # None: derived from the graph
    min_weight: float = 0.3
    max_depth: int = 8
    edge_share: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowAcceptance:
    """The members the viewer accepts by flow, and the capacity each node had."""

    accepted: frozenset[int]
    capacity: dict[int, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class IndependentPaths:
    """Vertex-disjoint vouch chains from the viewer to distinct targets."""

    count: int
    paths: tuple[tuple[int, ...], ...]


def _strong_edges(walk: RandomWalk, min_weight: float) -> sp.csr_matrix:
    weights = walk.weight_matrix().tocsr()
    strong = weights.copy()
    if min_weight > 0.0:
        strong.data = np.where(strong.data >= min_weight, strong.data, 0.0)
    walled = np.flatnonzero(walk.walls() >= 1.0)
    if walled.size:
        keep = np.ones(strong.shape[0])
        keep[walled] = 0.0
        strong = (sp.diags(keep) @ strong @ sp.diags(keep)).tocsr()
    strong.eliminate_zeros()
    return strong


def _distances(edges: sp.csr_matrix, source: int) -> IndexArray:
    raw = csgraph.shortest_path(edges, unweighted=True, indices=source, directed=True)
    distances = np.full(edges.shape[0], -1, dtype=np.int64)
    finite = np.isfinite(raw)
    distances[finite] = raw[finite].astype(np.int64)
    return distances


def accepted_members(walk: RandomWalk, parameters: FlowParameters | None = None) -> FlowAcceptance:
    """Run Advogato's flow from the viewer; see the module doc."""
    parameters = parameters or FlowParameters()
    edges = _strong_edges(walk, parameters.min_weight)
    n = edges.shape[0]
    distances = _distances(edges, walk.viewer)
    schedule = np.array([*_schedule(edges, distances, parameters), 0])
    level = np.where(distances >= 0, np.minimum(distances, len(schedule) - 1), len(schedule) - 1)
    capacity = schedule[level]
    capacity[walk.walls() >= 1.0] = 0
    sink = 2 * n
    coo = edges.tocoo()
    rows = [2 * coo.row + 1, 2 * np.arange(n), 2 * np.arange(n)]
    cols = [2 * coo.col, 2 * np.arange(n) + 1, np.full(n, sink)]
    out_degree = np.maximum(np.diff(edges.indptr), 1)
    if parameters.edge_share:
        per_edge = np.maximum(1, np.ceil(capacity / out_degree)).astype(np.int64)[coo.row]
    else:
        per_edge = np.full(coo.nnz, _UNBOUNDED)
    caps = [per_edge, np.maximum(capacity - 1, 0), (capacity > 0).astype(int)]
    network = sp.csr_matrix(
        (np.concatenate(caps).astype(np.int32), (np.concatenate(rows), np.concatenate(cols))),
        shape=(2 * n + 1, 2 * n + 1),
    )
    network.eliminate_zeros()
    flow = csgraph.maximum_flow(network, 2 * walk.viewer, sink).flow.tocsc()
    into_sink = np.asarray(flow[:, sink].todense()).ravel()[: 2 * n : 2]
    accepted = frozenset(int(i) for i in np.flatnonzero(into_sink > 0))
    return FlowAcceptance(
        accepted=accepted,
        capacity={int(i): int(capacity[i]) for i in np.flatnonzero(capacity > 0)},
    )


def _schedule(edges: sp.csr_matrix, distances: IndexArray, parameters: FlowParameters) -> list[int]:
    if parameters.capacities is not None:
        return list(parameters.capacities)
    reached = distances >= 0
    count = int(np.count_nonzero(reached))
    degree = max(2.0, float(np.diff(edges.indptr)[reached].mean())) if count else 2.0
    schedule = [count]
    for _ in range(parameters.max_depth - 1):
        schedule.append(max(1, math.ceil(schedule[-1] / degree)))
    return schedule


def independent_paths(
    walk: RandomWalk,
    targets: Iterable[int],
    *,
    min_weight: float = 0.3,
    allowed: frozenset[int] | None = None,
) -> IndependentPaths:
    """Vertex-disjoint vouch chains from the viewer to distinct members of `targets`.

    `allowed` restricts the members chains may pass through (e.g. the flow-
    accepted ones); targets themselves must be allowed too.
    """
    edges = _strong_edges(walk, min_weight)
    n = edges.shape[0]
    wanted = sorted({t for t in targets if allowed is None or t in allowed or t == walk.viewer})
    if walk.viewer in wanted:
        return IndependentPaths(count=1, paths=((walk.viewer,),))
    if not wanted:
        return IndependentPaths(count=0, paths=())
    sink = 2 * n
    through = np.ones(n, dtype=np.int32)
    if allowed is not None:
        through[:] = 0
        through[np.fromiter(allowed, dtype=np.int64)] = 1
    through[walk.viewer] = n  # the viewer may start many chains
    coo = edges.tocoo()
    target_array = np.array(wanted, dtype=np.int64)
    rows = np.concatenate([2 * coo.row + 1, 2 * np.arange(n), 2 * target_array + 1])
    cols = np.concatenate([2 * coo.col, 2 * np.arange(n) + 1, np.full(len(wanted), sink)])
    caps = np.concatenate([np.ones(coo.nnz), through, np.ones(len(wanted))]).astype(np.int32)
    network = sp.csr_matrix((caps, (rows, cols)), shape=(2 * n + 1, 2 * n + 1))
    network.eliminate_zeros()
    result = csgraph.maximum_flow(network, 2 * walk.viewer, sink)
    paths = _decompose(result.flow.tocsr(), 2 * walk.viewer, sink, int(result.flow_value))
    return IndependentPaths(count=int(result.flow_value), paths=paths)


def _decompose(
    flow: sp.csr_matrix, source: int, sink: int, count: int
) -> tuple[tuple[int, ...], ...]:
    """Unit flow paths from source to sink, as member numbers (halves merged)."""
    coo = flow.tocoo()
    positive = coo.data > 0
    remaining: dict[int, deque[int]] = {}
    for u, v, f in zip(
        coo.row[positive].tolist(),
        coo.col[positive].tolist(),
        coo.data[positive].tolist(),
        strict=True,
    ):
        remaining.setdefault(u, deque()).extend([v] * int(f))
    paths: list[tuple[int, ...]] = []
    for _ in range(count):
        node, members = source, [source // 2]
        while node != sink and remaining.get(node):
            node = remaining[node].popleft()
            if node != sink and node // 2 != members[-1]:
                members.append(node // 2)
        paths.append(tuple(members))
    return tuple(paths)
