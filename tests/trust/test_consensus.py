"""The consensus score and the support: bounded, exact parts, and robust to farms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.trust import ConsensusParameters, RandomWalk, TrustGraph, consensus, score_support
from protocol.identity import IdentityId
from tests.trust.graphs import NODE_IDS, SmallGraph, small_graphs


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(small_graphs())
def test_scores_are_bounded_and_their_parts_sum_to_them(case: SmallGraph) -> None:
    walk = RandomWalk(case.graph(), case.viewer)
    found = consensus(walk, ConsensusParameters(seeds=4, min_support=0))
    scores = found.scores
    assert scores[walk.viewer] == 1.0
    assert bool(np.all((scores >= 0.0) & (scores <= 1.0)))
    visits = np.asarray(walk.visits())
    assert bool(np.all(scores[visits <= 0.0] == 0.0))  # no path from the viewer: 0
    assert found.seeds[0] == walk.viewer
    assert set(found.seeds[1:]) <= found.support.members
    for node in range(len(scores)):
        if node == walk.viewer or found.base[node] == 0.0:
            continue
        factor = scores[node] / found.base[node]
        parts = found.ranks[:, node] * factor / len(found.seeds)
        assert float(parts.sum()) == pytest.approx(float(scores[node]), abs=1e-12)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(small_graphs(negative=False))
def test_a_larger_epsilon_never_keeps_more_members(case: SmallGraph) -> None:
    walk = RandomWalk(case.graph(), case.viewer)
    visits = np.asarray(walk.visits())
    kept = [score_support(visits, visits, walk.viewer, epsilon=e).members
            for e in (0.0, 0.01, 0.1, 0.5)]  # fmt: skip
    for larger, smaller in itertools.pairwise(kept):
        assert smaller <= larger
    assert walk.viewer not in kept[0]
    assert kept[0] == {int(i) for i in np.flatnonzero(visits > 0.0)} - {walk.viewer}


_CHANGES = st.tuples(st.integers(0, 15), st.integers(0, 15), st.integers(-100, 100))


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(small_graphs(), st.lists(_CHANGES, min_size=1, max_size=4))
def test_a_corrected_consensus_matches_a_fresh_solve(
    case: SmallGraph, changes: list[tuple[int, int, int]]
) -> None:
    """After any edits (new members, revocations, walls), the corrected seeds'
    visits agree with a fresh solve's on the same walk."""
    parameters = ConsensusParameters(seeds=4, min_support=0, tolerance=1e-10)
    walk = RandomWalk(case.graph(), case.viewer)
    found = consensus(walk, parameters)
    for a, b, value in changes:
        if a != b:
            walk.set_weight(NODE_IDS[a], NODE_IDS[b], value / 100.0)
            found = consensus(walk, parameters, previous=found)
    # The walk's own visits drift within their bound (push): solved exactly
    # here, so that support and seeds are the same for both.
    walk.recompute()
    again = consensus(walk, parameters, previous=found)
    exact = consensus(walk, parameters)
    assert again.seeds == exact.seeds
    assert again.visits is not None
    assert exact.visits is not None
    assert np.abs(again.visits - exact.visits).sum(axis=1).max() < 1e-7


def _community(members: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    edges = set()
    for u in range(1, members):
        for v in rng.choice(u, min(u, 4), replace=False).tolist():
            edges |= {(u, int(v)), (int(v), u)}
    return sorted(edges)


def test_after_an_update_the_table_is_corrected_not_solved_again() -> None:
    """New vouches in a 200-member community: the consensus corrects its seeds'
    vectors (one solve for the changed row and the few new seeds, not 65) and
    gets a fresh solve's scores."""
    ids = [IdentityId(i.to_bytes(32, "big")) for i in range(200)]
    weights = {(ids[u], ids[v]): 0.8 for u, v in _community(200, 3)}
    walk = RandomWalk(TrustGraph.from_weights(weights, identities=ids), ids[0])
    found = consensus(walk)
    assert len(found.seeds) == 65
    assert found.corrections == 0
    corrections = []
    for u, v in [(150, 7), (30, 199), (170, 20), (120, 121)]:
        walk.set_weight(ids[u], ids[v], 0.6)
        found = consensus(walk, previous=found)
        corrections.append(found.corrections)
    assert max(corrections) >= 2  # (a full solve when more than 16 seeds moved)
    walk.recompute()
    corrected = consensus(walk, previous=found)
    exact = consensus(walk)
    assert exact.corrections == 0
    assert corrected.seeds == exact.seeds
    assert np.abs(corrected.scores - exact.scores).max() < 1e-6
    # A revoked vouch can cut someone off a seed: then a full solve, not a correction.
    walk.set_weight(ids[150], ids[7], 0.0)
    assert consensus(walk, previous=corrected).corrections == 0
