"""Small seeded runs of the `sybil` scenario (the full grid is `python -m simulations.sybil`)."""

from __future__ import annotations

import numpy as np
import pytest

from simulations import sybil

pytestmark = pytest.mark.slow


def _setup(victims: str) -> tuple[sybil.Weights, int, int, list[tuple[int, int]]]:
    rng = np.random.default_rng(11)
    honest = sybil.honest_region("BA", rng)
    n_honest = honest.number_of_nodes()
    honest_weights = sybil._vouches(honest, rng)
    weights = {**honest_weights, **sybil.farm_region("dense", n_honest, rng)}
    viewer = 7
    walk = sybil._build(honest_weights, n_honest, viewer)
    attack = sybil.attack_edges(victims, walk.scores_all(), n_honest, viewer, rng)
    for victim, entry in attack:
        weights[(victim, entry)] = 1.0
        weights[(entry, victim)] = 1.0
    return weights, n_honest, viewer, attack


def test_random_victims_rank_the_farm_last_and_the_bound_holds() -> None:
    weights, n_honest, viewer, attack = _setup("random")
    figures = sybil.evaluate(weights, n_honest, viewer, attack)
    assert figures["walk"].auc >= 0.99
    assert figures["walk"].farm_mass < 0.01
    assert all(f.bound_holds for f in figures.values())
    assert figures["introducers"].per_edge == 0.0  # nobody the viewer marked vouches for it


def test_the_scenario_is_deterministic() -> None:
    one = sybil.evaluate(*_setup("targeted"))
    other = sybil.evaluate(*_setup("targeted"))
    assert one == other
    assert one["walk"].bound_holds


def test_auc_counts_ties_as_half() -> None:
    assert sybil.auc(np.array([1.0, 2.0]), np.array([0.0])) == 1.0
    assert sybil.auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert sybil.auc(np.array([0.0]), np.array([1.0])) == 0.0
