"""The push-tree graph model counts hops and copies correctly."""

from __future__ import annotations

import random

from simulations.tree_bound import bfs_tree, random_links, spread, with_extra_links


def test_a_tree_costs_one_copy_and_a_source_tree_matches_the_flood() -> None:
    rng = random.Random(4)
    graph = random_links(200, 3, rng)
    tree, _ = bfs_tree(graph, 0)
    assert sum(len(links) for links in tree.values()) == 2 * (200 - 1)  # spanning tree
    for source in rng.sample(range(200), 10):
        flood = spread(graph, graph, source)
        source_tree, _ = bfs_tree(graph, source)
        own = spread(graph, source_tree, source)
        assert own.copies_per_node == 1.0
        assert (own.hops_99, own.hops_100) == (flood.hops_99, flood.hops_100)
        assert flood.copies_per_node > 3  # every link carries it, mostly twice
        assert spread(graph, tree, source).hops_100 >= flood.hops_100


def test_extra_eager_links_cost_copies() -> None:
    rng = random.Random(5)
    graph = random_links(200, 3, rng)
    tree, _ = bfs_tree(graph, 0)
    eager = with_extra_links(graph, tree, 20, rng)
    # Each extra link carries the message at least once more.
    assert spread(graph, eager, 7).copies_per_node >= 1.0 + 20 / 199
