"""Flow acceptance, independent paths and introducer validity on hand-made graphs."""

from __future__ import annotations

import itertools

from hypothesis import given

from node.trust import (
    FlowParameters,
    IntroducerLevel,
    IntroducerParameters,
    RandomWalk,
    TrustGraph,
    accepted_members,
    independent_paths,
    introducer_validity,
)
from protocol.identity import IdentityId
from tests.trust.graphs import NODE_IDS, SmallGraph, small_graphs

V, A, B, C, D, E, F, G = NODE_IDS[:8]


def _walk(weights: dict[tuple[IdentityId, IdentityId], float]) -> RandomWalk:
    return RandomWalk(TrustGraph.from_weights(weights, identities=NODE_IDS[:8]), V)


def test_a_farm_behind_one_member_gets_at_most_its_capacity() -> None:
    weights = {(V, A): 1.0, (V, B): 1.0, (A, C): 1.0, (B, C): 1.0}
    farm = {(D, E): 1.0, (E, F): 1.0, (F, G): 1.0, (E, D): 1.0, (G, D): 1.0}
    walk = _walk({**weights, **farm, (C, D): 1.0})
    acceptance = accepted_members(walk, FlowParameters(capacities=(8, 3, 2, 1)))
    farm_nodes = {walk.node(x) for x in (D, E, F, G)}
    # C is at distance 2 (capacity 2): it keeps one unit and passes one on.
    assert len(acceptance.accepted & farm_nodes) <= acceptance.capacity[walk.node(C) or 0] - 1
    assert {walk.node(A), walk.node(B), walk.node(C)} <= acceptance.accepted


def test_distrusted_members_are_never_accepted() -> None:
    walk = _walk({(V, A): 1.0, (A, B): 1.0, (V, B): -1.0})
    assert walk.node(B) not in accepted_members(walk).accepted


def test_independent_paths_merge_evidence_through_one_member() -> None:
    walk = _walk({(V, A): 1.0, (A, B): 1.0, (A, C): 1.0, (V, D): 1.0, (D, E): 1.0})
    node = {x: walk.node(x) or 0 for x in (A, B, C, D, E)}
    shared = independent_paths(walk, [node[B], node[C]])
    assert shared.count == 1
    apart = independent_paths(walk, [node[B], node[E]])
    assert apart.count == 2
    assert sorted(p[-1] for p in apart.paths) == sorted([node[B], node[E]])
    assert all(p[0] == walk.viewer for p in apart.paths)


def _brute_disjoint(graph: SmallGraph, walk: RandomWalk, targets: list[int]) -> int:
    """Largest set of vertex-disjoint simple paths to distinct targets (tiny graphs)."""
    number = {identity: walk.node(identity) or 0 for identity in NODE_IDS[: graph.size]}
    edges = {(number[a], number[b]) for (a, b), w in graph.weights.items() if w >= 0.3}
    walls = {number[b] for (a, b), w in graph.weights.items() if a == graph.viewer and w <= -1}

    def paths_to(target: int) -> list[tuple[int, ...]]:
        found: list[tuple[int, ...]] = []
        stack: list[tuple[int, ...]] = [(walk.viewer,)]
        while stack:
            path = stack.pop()
            for u, v in edges:
                if u == path[-1] and v not in path and v not in walls:
                    if v == target:
                        found.append((*path, v))
                    else:
                        stack.append((*path, v))
        return found

    options = [paths_to(t) for t in targets]
    for size in range(len(targets), 0, -1):
        for chosen in itertools.combinations(range(len(targets)), size):
            for combo in itertools.product(*(options[i] for i in chosen)):
                inner = [set(p[1:]) for p in combo]
                if all(not (x & y) for x, y in itertools.combinations(inner, 2)):
                    return size
    return 0


@given(small_graphs(max_size=6))
def test_independent_paths_match_brute_force(graph: SmallGraph) -> None:
    walk = RandomWalk(graph.graph(), graph.viewer)
    targets = list(range(1, graph.size))[:3]
    assert independent_paths(walk, targets).count == _brute_disjoint(graph, walk, targets)


def test_classic_introducers_only_the_viewer_makes_introducers() -> None:
    weights = {
        (V, A): 1.0,  # full introducer
        (V, B): 0.5, (V, C): 0.5, (V, D): 0.5,  # marginal introducers
        (A, E): 0.9,  # one full vouch: valid
        (B, F): 0.5, (C, F): 0.5, (D, F): 0.5,  # three marginal vouches: valid
        (E, G): 1.0,  # E is valid but not an introducer: G stays invalid
    }  # fmt: skip
    walk = _walk(weights)
    validity = introducer_validity(walk)
    node = {x: walk.node(x) or 0 for x in (A, B, E, F, G)}
    assert node[E] in validity.depth
    assert node[F] in validity.depth
    assert node[G] not in validity.depth
    assert validity.level[node[A]] is IntroducerLevel.FULL
    assert validity.level[node[B]] is IntroducerLevel.MARGINAL
    assert node[E] not in validity.level
    assert validity.evidence[node[F]] == tuple(
        sorted((walk.node(x) or 0, IntroducerLevel.MARGINAL) for x in (B, C, D))
    )
    delegated = introducer_validity(walk, IntroducerParameters(delegation_depth=2))
    assert node[G] in delegated.depth  # A signed E as a full introducer (trust signature)
