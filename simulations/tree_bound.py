"""How few hops can one push tree give? A graph model of `simulations.convergence`'s links.

Issue #5 asks that a new attestation reach 99 % of 1000 members within 6 hops
and all within 8, at <= 1.2 payload copies per member. The gossip nodes keep
one eager tree for every source (Plumtree), and after the tree formed they
measure about 10 and 11 hops. This model asks whether any *single* spanning
tree of the same link graph could do better, without running node code: it
builds the graph the scenario builds (every node links to `dials` random
others), takes a breadth-first tree from the first publisher (what Plumtree's
first flood leaves) or from the graph's most central node (the best root), and
spreads messages from random sources hop by hop, counting copies. Options: a
flood of the first `radius` hops around each source before the tree takes
over, and `extra` random non-tree links kept eager; and, for comparison, a
tree of its own per source (what per-source trees give once each source's
first message has formed its tree).

Run: `python -m simulations.tree_bound [--nodes 1000] [--dials 3] [--seed 1]`.
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

Graph = dict[int, set[int]]


@dataclass(frozen=True)
class Spread:
    """One message: hops until 99 % and 100 % of nodes hold it; copies per node."""

    hops_99: int
    hops_100: int
    copies_per_node: float


def random_links(nodes: int, dials: int, rng: random.Random) -> Graph:
    """Each node links to `dials` others at random (links are undirected)."""
    graph: Graph = {v: set() for v in range(nodes)}
    for v in range(nodes):
        for u in rng.sample([m for m in range(nodes) if m != v], dials):
            graph[v].add(u)
            graph[u].add(v)
    return graph


def bfs_tree(graph: Graph, root: int) -> tuple[Graph, int]:
    """A breadth-first spanning tree from `root`, and its depth."""
    depth, tree = {root: 0}, {v: set[int]() for v in graph}
    queue = deque([root])
    while queue:
        v = queue.popleft()
        for u in sorted(graph[v]):
            if u not in depth:
                depth[u] = depth[v] + 1
                tree[v].add(u)
                tree[u].add(v)
                queue.append(u)
    return tree, max(depth.values())


def spread(graph: Graph, eager: Graph, source: int, *, radius: int = 0) -> Spread:
    """Spread from `source`: a node first reached within `radius` hops sends to
    all its links, later ones only along `eager` links (never back to the sender)."""
    first: dict[int, int] = {}
    sent = 0
    queue = [(0, source, -1)]
    while queue:
        hops, v, sender = heapq.heappop(queue)
        if v in first:
            continue
        first[v] = hops
        for u in graph[v] if hops < radius else eager[v]:
            if u != sender:
                sent += 1
                heapq.heappush(queue, (hops + 1, u, v))
    times = sorted(first.values())
    count = len(graph)
    return Spread(times[round(0.99 * count) - 1], times[-1], sent / (count - 1))


def with_extra_links(graph: Graph, tree: Graph, extra: int, rng: random.Random) -> Graph:
    """`tree` plus `extra` of the graph's other links, chosen at random."""
    others = sorted((v, u) for v in graph for u in graph[v] if v < u and u not in tree[v])
    eager = {v: set(tree[v]) for v in tree}
    for v, u in rng.sample(others, min(extra, len(others))):
        eager[v].add(u)
        eager[u].add(v)
    return eager


def _median(spreads: list[Spread]) -> tuple[float, float, float]:
    return (
        statistics.median(s.hops_99 for s in spreads),
        statistics.median(s.hops_100 for s in spreads),
        statistics.median(s.copies_per_node for s in spreads),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the median hops and copies per setting."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--dials", type=int, default=3)
    parser.add_argument("--messages", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    graph = random_links(args.nodes, args.dials, rng)
    first_tree, first_depth = bfs_tree(graph, rng.randrange(args.nodes))
    depths = {v: bfs_tree(graph, v)[1] for v in rng.sample(range(args.nodes), 50)}
    centre = min(depths, key=lambda v: depths[v])
    centre_tree, centre_depth = bfs_tree(graph, centre)
    sources = [rng.randrange(args.nodes) for _ in range(args.messages)]
    print(
        f"{args.nodes} nodes, each links to {args.dials} others; medians over "
        f"{args.messages} random sources (targets: 99 % <= 6 hops, 100 % <= 8, <= 1.2 copies)"
    )
    settings: list[tuple[str, Graph, int]] = [("flood (every link eager)", graph, 0)]
    for name, tree, depth in (
        ("tree of the first flood", first_tree, first_depth),
        ("tree from the centre", centre_tree, centre_depth),
    ):
        settings += [(f"{name} (depth {depth})", tree, 0)]
        settings += [(f"{name} + flood of {r} hops", tree, r) for r in (2, 3)]
    for k in (50, 150):
        eager = with_extra_links(graph, centre_tree, k, rng)
        settings.append((f"tree from the centre + {k} random eager links", eager, 0))
    print(f"  {'eager links':<52} {'99 %':>5} {'100 %':>6} {'copies':>7}")
    for name, eager, radius in settings:
        hops_99, hops_100, copies = _median(
            [spread(graph, eager, s, radius=radius) for s in sources]
        )
        print(f"  {name:<52} {hops_99:>5.0f} {hops_100:>6.0f} {copies:>7.2f}")
    # What per-source trees would give once formed: each source its own BFS tree.
    own = _median([spread(graph, bfs_tree(graph, s)[0], s) for s in sources])
    print(f"  {'a tree per source (once formed)':<52} {own[0]:>5.0f} {own[1]:>6.0f} {own[2]:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
