"""The held-out driver: misses against issue 22's targets, and refusing the tuning seeds."""

from __future__ import annotations

import pytest

from simulations.community_holdout import main, misses
from simulations.community_study import Figures


def _fig(changes: dict[str, float] | None = None, *, size: int = 1000) -> Figures:
    values = {
        "claims_pct": 96.0, "farm_claims_per_edge": 1.0, "honest_accepted_pct": 90.0,
        "farm_accepted_per_edge": 2.0, "auc": 0.95, "farm_above_p10_per_edge": 3.0,
    }  # fmt: skip
    values.update(changes or {})
    return Figures(shape="streets", size=size, attack="random", **values)


def test_on_every_bound_is_no_miss() -> None:
    assert misses(_fig()) == []


@pytest.mark.parametrize(
    ("field", "value", "key"),
    [
        ("claims_pct", 94.5, "claims"),
        ("farm_claims_per_edge", 1.1, "farmcl"),
        ("honest_accepted_pct", 89.9, "honest"),
        ("farm_accepted_per_edge", 2.1, "farmacc"),
        ("auc", 0.949, "auc"),
        ("farm_above_p10_per_edge", 3.1, "p10"),
    ],
)
def test_each_target_missed_alone(field: str, value: float, key: str) -> None:
    assert misses(_fig({field: value})) == [key]


def test_claims_target_is_90_at_10000() -> None:
    assert misses(_fig({"claims_pct": 91.0}, size=10_000)) == []
    assert misses(_fig({"claims_pct": 89.0}, size=10_000)) == ["claims"]


@pytest.mark.parametrize("seeds", ["0", "1,2", "2,3,1"])
def test_tuning_seeds_refused(seeds: str) -> None:
    with pytest.raises(SystemExit):
        main(["--seeds", seeds])


def test_claims_certified_by_two_are_a_target_of_their_own() -> None:
    """`claims2`: the share among claims certified by two members (a member
    with one graph neighbour has one certifier); -1, not measured, is no miss."""
    assert misses(_fig({"claims_two_pct": 96.0})) == []
    assert misses(_fig({"claims_two_pct": -1.0})) == []
    assert misses(_fig({"claims_pct": 94.0, "claims_two_pct": 95.5})) == ["claims"]
    assert misses(_fig({"claims_pct": 94.0, "claims_two_pct": 94.9})) == ["claims", "claims2"]
