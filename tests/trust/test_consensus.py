"""The consensus score and the support: bounded, exact parts, and robust to farms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings

from node.trust import ConsensusParameters, RandomWalk, consensus, score_support
from tests.trust.graphs import SmallGraph, small_graphs


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
