"""The consensus score and the support: bounded, exact parts, and robust to farms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.trust import ConsensusParameters, RandomWalk, TrustGraph, consensus, score_support
from node.trust.consensus import score_of, seeded, table
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
    visits agree with a fresh solve's on the same walk (the block iteration,
    above `dense_limit`)."""
    parameters = ConsensusParameters(seeds=4, min_support=0, tolerance=1e-10, dense_limit=0)
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


_UPDATES = st.lists(_CHANGES, min_size=1, max_size=12)


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(small_graphs(max_size=12), _UPDATES, st.integers(1, 4))
def test_woodbury_corrections_give_a_fresh_solves_scores(
    case: SmallGraph, changes: list[tuple[int, int, int]], every: int
) -> None:
    """The dense inverse kept by Woodbury updates through any sequence of
    edits (new members, new and revoked vouches, walls; asked every `every`
    edits, so several rows change at once) gives the scores of a fresh
    inversion to 1e-9, ties included, and one member's `score_of` is its
    table entry to the last bit."""
    parameters = ConsensusParameters(seeds=4, min_support=0)
    walk = RandomWalk(case.graph(), case.viewer)
    found = seeded(walk, parameters)
    corrections = 0
    for step, (a, b, value) in enumerate(changes):
        if a == b:
            continue
        walk.set_weight(NODE_IDS[a], NODE_IDS[b], value / 100.0)
        if step % every == 0:
            found = seeded(walk, parameters, previous=found)
            corrections = max(corrections, found.corrections)
            scores = table(walk, found).scores
            for node in range(len(walk.identities)):
                assert score_of(walk, found, node) == scores[node]
    found = seeded(walk, parameters, previous=found)
    corrected, fresh = table(walk, found), consensus(walk, parameters)
    assert corrected.seeds == fresh.seeds
    assert found.inverse is not None
    assert corrected.visits is not None
    assert fresh.visits is not None
    assert np.abs(corrected.visits - fresh.visits).max() < 1e-12
    assert np.abs(corrected.scores - fresh.scores).max() < 1e-9
    assert found.corrections <= parameters.dense_refresh_every


def _community(members: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    edges = set()
    for u in range(1, members):
        for v in rng.choice(u, min(u, 4), replace=False).tolist():
            edges |= {(u, int(v)), (int(v), u)}
    return sorted(edges)


def test_after_an_update_the_table_is_corrected_not_solved_again() -> None:
    """New vouches in a 200-member community, above `dense_limit`: the
    consensus corrects its seeds' vectors (one solve for the changed row and
    the few new seeds, not 65) and gets a fresh solve's scores."""
    parameters = ConsensusParameters(dense_limit=0)
    ids = [IdentityId(i.to_bytes(32, "big")) for i in range(200)]
    weights = {(ids[u], ids[v]): 0.8 for u, v in _community(200, 3)}
    walk = RandomWalk(TrustGraph.from_weights(weights, identities=ids), ids[0])
    found = consensus(walk, parameters)
    assert len(found.seeds) == 65
    assert found.corrections == 0
    corrections = []
    for u, v in [(150, 7), (30, 199), (170, 20), (120, 121)]:
        walk.set_weight(ids[u], ids[v], 0.6)
        found = consensus(walk, parameters, previous=found)
        corrections.append(found.corrections)
    assert max(corrections) >= 2  # (a full solve when more than 16 seeds moved)
    walk.recompute()
    corrected = consensus(walk, parameters, previous=found)
    exact = consensus(walk, parameters)
    assert exact.corrections == 0
    assert corrected.seeds == exact.seeds
    assert np.abs(corrected.scores - exact.scores).max() < 1e-6
    # A revoked vouch can cut someone off a seed: then a full solve, not a correction.
    walk.set_weight(ids[150], ids[7], 0.0)
    assert consensus(walk, parameters, previous=corrected).corrections == 0


def test_up_to_the_dense_limit_every_update_is_a_woodbury_correction() -> None:
    """The same community under the default parameters: every update, a
    revocation and a new member included, corrects the dense inverse (no
    solve at all, whichever members become seeds) and gives a fresh
    inversion's scores exactly (to rounding), and the scores of the block
    iteration run to 1e-14 (the exact visits)."""
    ids = [IdentityId(i.to_bytes(32, "big")) for i in range(201)]
    weights = {(ids[u], ids[v]): 0.8 for u, v in _community(200, 3)}
    walk = RandomWalk(TrustGraph.from_weights(weights, identities=ids[:200]), ids[0])
    found = seeded(walk)
    assert found.inverse is not None
    changes = [(150, 7, 0.6), (30, 199, 0.6), (150, 7, 0.0), (170, 200, 0.9), (200, 20, 0.5)]
    for step, (u, v, weight) in enumerate(changes, start=1):
        walk.set_weight(ids[u], ids[v], weight)
        found = seeded(walk, previous=found)
        assert found.corrections == step
    walk.recompute()
    found = seeded(walk, previous=found)
    corrected = table(walk, found)
    fresh = consensus(walk)
    assert fresh.corrections == 0
    assert np.abs(corrected.scores - fresh.scores).max() < 1e-12
    iterated = consensus(walk, ConsensusParameters(dense_limit=0, tolerance=1e-14))
    assert np.abs(corrected.scores - iterated.scores).max() < 1e-12
    assert all(score_of(walk, found, n) == corrected.scores[n] for n in range(201))
