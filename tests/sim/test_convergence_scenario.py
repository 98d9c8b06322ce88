"""The `convergence` scenario on a small network (the 1000-node figures: the closing notes)."""

from __future__ import annotations

import pytest

from simulations.convergence import run

pytestmark = pytest.mark.slow


def test_every_attestation_reaches_every_node_once_along_short_paths() -> None:
    spreads = run(nodes=60, attestations=4, seed=3)
    assert all(s.reached == 60 for s in spreads)
    # Source trees: even each author's first attestation arrives once per node
    # (a flood over ~6 links would deliver about 4 copies)...
    assert all(s.copies_per_node <= 1.05 for s in spreads), spreads
    # ...in as many hops as a shortest path (60 nodes, ~6 links: 4 or 5).
    assert all(s.hops_100 <= 6 for s in spreads), spreads
