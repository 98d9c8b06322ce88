"""Seeded neighbourhood-shaped communities, certification patterns and attacks (issue 22).

Everything here is plain data over member numbers 0..n-1 (honest members
first, then the farm), so the study (`simulations.community_study`) can turn
it into signed attestations and ask a `TrustEngine`, the public API, for its
answers.

Honest shapes (each returns mutual-ish vouches and a partition into
"streets": the groups whose members certify each other's residence):

* `streets`: streets of 20; each member is linked to 3 street-mates of its
  choice (6 on average) and, with probability 0.6 (then 0.15 more), to one
  member of another street (school, shops);
* `small-world`: connected Watts-Strogatz ring (k = 8, p = 0.1), streets
  are runs of 20 along the ring (slow-mixing, the known hard case);
* `sbm`: stochastic block model, blocks of 50 (p_in 0.12, p_out 1.5/n);
* `hubs`: degree-heterogeneous Holme-Kim (m = 3, p = 0.5); streets are
  groups of 20 consecutive members (by arrival).

Vouches are mutual with probability 0.8, value 80 (the issue's figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

__all__ = [
    "SHAPES",
    "Community",
    "Farm",
    "certifications",
    "community",
    "farm",
]

SHAPES = ("streets", "small-world", "sbm", "hubs")
STREET = 20
CROSS = 0.6
VOUCH = 80


@dataclass(frozen=True, slots=True, kw_only=True)
class Community:
    """An honest community: vouches (issuer, subject, value) and its streets."""

    size: int
    vouches: tuple[tuple[int, int, int], ...]
    street: tuple[int, ...]  # street number of every member
    neighbours: tuple[tuple[int, ...], ...]  # undirected graph neighbours


@dataclass(frozen=True, slots=True, kw_only=True)
class Farm:
    """An identity farm: members offset..offset+size-1, its own vouches."""

    offset: int
    size: int
    vouches: tuple[tuple[int, int, int], ...]


def _undirected(shape: str, n: int, rng: np.random.Generator) -> tuple[nx.Graph, list[int]]:
    seed = int(rng.integers(1 << 31))
    if shape == "streets":
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        streets = [i // STREET for i in range(n)]
        count = (n + STREET - 1) // STREET
        for i in range(n):
            start = streets[i] * STREET
            mates = [j for j in range(start, min(start + STREET, n)) if j != i]
            for j in rng.choice(mates, min(3, len(mates)), replace=False).tolist():
                graph.add_edge(i, int(j))
            for _ in range(int(rng.random() < CROSS) + int(rng.random() < CROSS / 4)):
                if count > 1:
                    other = int(rng.integers(count - 1))
                    other += other >= streets[i]
                    low = other * STREET
                    graph.add_edge(i, int(rng.integers(low, min(low + STREET, n))))
        return graph, streets
    if shape == "small-world":
        graph = nx.connected_watts_strogatz_graph(n, 8, 0.1, seed=seed)
        return graph, [i // STREET for i in range(n)]
    if shape == "sbm":
        blocks = [50] * (n // 50) + ([n % 50] if n % 50 else [])
        p = [[0.12 if a == b else 1.5 / n for b in range(len(blocks))] for a in range(len(blocks))]
        graph = nx.stochastic_block_model(blocks, p, seed=seed)
        streets = [i // 50 for i in range(n)]
        _connect(graph, rng)
        return nx.Graph(graph), streets
    if shape == "hubs":
        graph = nx.powerlaw_cluster_graph(n, 3, 0.5, seed=seed)
        return graph, [i // STREET for i in range(n)]
    raise ValueError(f"unknown shape {shape!r}")


def _connect(graph: nx.Graph, rng: np.random.Generator) -> None:
    """Join every component to the giant one by one edge (a member who moved in)."""
    parts = sorted(nx.connected_components(graph), key=lambda c: (-len(c), min(c)))
    giant = sorted(parts[0])
    for part in parts[1:]:
        graph.add_edge(min(part), giant[int(rng.integers(len(giant)))])


def _vouches(
    graph: nx.Graph, rng: np.random.Generator, offset: int = 0
) -> list[tuple[int, int, int]]:
    out: list[tuple[int, int, int]] = []
    for a, b in sorted(graph.edges()):
        u, v = (a, b) if rng.random() < 0.5 else (b, a)
        out.append((u + offset, v + offset, VOUCH))
        if rng.random() < 0.8:
            out.append((v + offset, u + offset, VOUCH))
    return out


def community(shape: str, n: int, seed: int) -> Community:
    """A seeded honest community of `n` members of `shape`."""
    rng = np.random.default_rng([seed, SHAPES.index(shape), n])
    graph, streets = _undirected(shape, n, rng)
    return Community(
        size=n,
        vouches=tuple(_vouches(graph, rng)),
        street=tuple(streets),
        neighbours=tuple(tuple(sorted(graph.neighbors(i))) for i in range(n)),
    )


def farm(shape: str, offset: int, size: int, seed: int) -> Farm:
    """An identity farm: `cliques` (a chain of 5-cliques, the issue's) or `copy`
    (the honest `streets` shape at the farm's size), every vouch mutual at 100."""
    rng = np.random.default_rng([seed, 7, size])
    if shape == "cliques":
        graph = nx.Graph()
        for start in range(0, size, 5):
            members = range(start, min(start + 5, size))
            graph.add_edges_from((a, b) for a in members for b in members if a < b)
            if start:
                graph.add_edge(start - 1, start)
    elif shape == "copy":
        graph, _ = _undirected("streets", size, rng)
    else:
        raise ValueError(f"unknown farm {shape!r}")
    vouches = [(a + offset, b + offset, 100) for a, b in graph.edges()]
    vouches += [(b, a, v) for a, b, v in vouches]
    return Farm(offset=offset, size=size, vouches=tuple(sorted(vouches)))


def certifications(pattern: str, honest: Community, seed: int) -> list[tuple[int, int]]:
    """(certifier, subject) pairs for every honest member's residence claim.

    * `street-mates`: two graph neighbours from the subject's street (any
      neighbour if fewer), the issue's pattern;
    * `leader`: the best-connected member of each street certifies all of it
      (one certifier: evaluated with `independent=1`);
    * `inviter`: the member who brought the subject in (its BFS parent from
      member 0) certifies it (one certifier).
    """
    rng = np.random.default_rng([seed, 11, honest.size])
    if pattern == "street-mates":
        return _street_mates(honest, rng)
    if pattern == "leader":
        return _leaders(honest)
    if pattern == "inviter":
        return _inviters(honest)
    raise ValueError(f"unknown pattern {pattern!r}")


def _street_mates(honest: Community, rng: np.random.Generator) -> list[tuple[int, int]]:
    pairs: list[tuple[int, int]] = []
    for x in range(honest.size):
        mates = [y for y in honest.neighbours[x] if honest.street[y] == honest.street[x]]
        pool = mates if len(mates) >= 2 else list(honest.neighbours[x])
        pairs.extend((int(y), x) for y in rng.choice(pool, min(2, len(pool)), replace=False))
    return pairs


def _leaders(honest: Community) -> list[tuple[int, int]]:
    leaders: dict[int, int] = {}
    for x in range(honest.size):
        s = honest.street[x]
        best = leaders.get(s)
        if best is None or len(honest.neighbours[x]) > len(honest.neighbours[best]):
            leaders[s] = x
    return [(leaders[honest.street[x]], x) for x in range(honest.size)
            if leaders[honest.street[x]] != x]  # fmt: skip


def _inviters(honest: Community) -> list[tuple[int, int]]:
    parent = {0: 0}
    frontier = [0]
    while frontier:
        following: list[int] = []
        for u in frontier:
            for v in honest.neighbours[u]:
                if v not in parent:
                    parent[v] = u
                    following.append(v)
        frontier = following
    return [(p, x) for x, p in sorted(parent.items()) if p != x]
