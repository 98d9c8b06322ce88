"""A small run of the `convergence` scenario (the 1000-node run is `python -m
simulations.convergence`)."""

from __future__ import annotations

import pytest

from simulations.convergence import run

pytestmark = pytest.mark.slow


def test_every_attestation_reaches_every_node_and_the_tree_saves_copies() -> None:
    spreads = run(nodes=60, attestations=4, seed=3)
    assert all(s.reached == 60 for s in spreads)
    assert spreads[0].copies_per_node > 2.0  # the first one floods
    assert max(s.copies_per_node for s in spreads[1:]) < spreads[0].copies_per_node
    assert all(s.hops_100 < 20 for s in spreads)
