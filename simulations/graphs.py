"""Seeded synthetic communities: honest regions, identity farms, attack edges.

`preferential_attachment` is a vectorised Barabasi-Albert generator (linear
chord-diagram form: each new edge picks an endpoint of a uniformly chosen
earlier edge end, so targets are drawn proportionally to degree) that makes
the million-node graphs of `benchmarks.trust` in seconds. The smaller honest
regions of the `sybil` scenario come from networkx's reference generators.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from node.trust import TrustGraph
from protocol.identity import IdentityId

__all__ = ["identities_for", "preferential_attachment", "symmetric_graph"]

IndexArray = npt.NDArray[np.int64]


def preferential_attachment(
    n: int, m: int, rng: np.random.Generator
) -> tuple[IndexArray, IndexArray]:
    """Undirected BA-style edges (sources, targets) on n nodes, m per new node.

    Node i >= 1 adds min(i, m) edges... approximately: each of its m edges goes
    to the endpoint of a uniformly random earlier edge end; loops and repeats
    are dropped afterwards, so a few nodes end with fewer than m edges.
    """
    count = n * m
    sources = np.repeat(np.arange(n, dtype=np.int64), m)
    # Edge k's target is the end number r of a uniform draw among the 2k ends
    # before it (end 2j is edge j's source, end 2j + 1 its target).
    draws = (rng.random(count) * (2 * np.arange(count))).astype(np.int64)
    targets = np.where(draws % 2 == 0, sources[draws // 2], -1 - draws // 2)
    unresolved = targets < 0
    while bool(unresolved.any()):
        pointer = -1 - targets[unresolved]
        targets[unresolved] = targets[pointer]
        unresolved = targets < 0
    keep = sources != targets
    sources, targets = sources[keep], targets[keep]
    low, high = np.minimum(sources, targets), np.maximum(sources, targets)
    pairs = np.unique(low * n + high)
    return pairs // n, pairs % n


def identities_for(count: int) -> tuple[IdentityId, ...]:
    """`count` distinct 32-byte identities in byte order (big-endian counters)."""
    return tuple(IdentityId(i.to_bytes(32, "big")) for i in range(count))


def symmetric_graph(
    n: int, sources: IndexArray, targets: IndexArray, weights: npt.NDArray[np.float64]
) -> TrustGraph:
    """A trust graph with both directions of every undirected edge."""
    return TrustGraph.from_arrays(
        identities_for(n),
        issuers=np.concatenate([sources, targets]),
        subjects=np.concatenate([targets, sources]),
        weights=np.concatenate([weights, weights]),
    )
