"""Yes/no thresholds derived per viewer from its support's score distribution."""

from __future__ import annotations

import numpy as np
import pytest

from node.trust import TrustEngine
from node.trust.decisions import seed_median
from node.trust.engine import DecisionParameters
from protocol.errors import LocalProtocolError
from simulations.community_study import NOW, build


def test_a_wider_honest_spread_lowers_the_threshold_down_to_its_floor() -> None:
    rule = DecisionParameters()
    ring = rule.threshold(0.5, 0.12, floor=rule.accept, width=rule.accept_spread)
    streets = rule.threshold(0.5, 0.17, floor=rule.accept, width=rule.accept_spread)
    hubs = rule.threshold(0.5, 0.33, floor=rule.accept, width=rule.accept_spread)
    assert ring == pytest.approx(0.5 * (1 - 2.7 * 0.12))
    assert ring > streets > hubs == pytest.approx(0.5 * rule.accept)
    # No width: a plain fraction of the median (the rule before, a sweep's knob).
    assert rule.threshold(0.5, 0.12, floor=0.3, width=None) == pytest.approx(0.15)
    with pytest.raises(LocalProtocolError):
        DecisionParameters(accept_spread=-1.0)


@pytest.mark.slow
def test_accepted_is_exactly_the_members_at_or_above_the_viewers_threshold() -> None:
    scenario = build("streets", 200, "targeted", 1)
    viewer = scenario.ids[scenario.viewer]
    engine = TrustEngine(viewer, now_ms=NOW, attestations=scenario.attestations)
    table = engine.scores()
    support = [table[i] for i in engine.support()]
    median = float(np.median(support))
    spread = (float(np.quantile(support, 0.75)) - median) / median
    rule = engine.decision_parameters
    line = rule.threshold(median, spread, floor=rule.accept, width=rule.accept_spread)
    expected = {i for i, s in table.items() if s >= line and s > 0.0} | {viewer}
    assert engine.accepted() == expected
    # A member below the backed route's floor has no claim accepted (the viewer
    # certified none).
    low = [i for i, s in table.items() if 0.0 < s < rule.claim_backed * median and i != viewer]
    assert all(not engine.claim(i, "resident").accepted for i in low[:20])


@pytest.mark.slow
def test_every_accepted_claim_stands_on_one_of_the_two_routes() -> None:
    """On the line with its seeds' median >= claim_seeds x its score, or backed:
    every counted chain ends at a certifier >= claim_backers x median."""
    scenario = build("streets", 300, "targeted", 1)
    viewer = scenario.ids[scenario.viewer]
    engine = TrustEngine(viewer, now_ms=NOW, attestations=scenario.attestations)
    table = engine.scores()
    rule = engine.decision_parameters
    assert rule.claim_backers is not None
    support = [table[i] for i in engine.support()]
    median = float(np.median(support))
    spread = (float(np.quantile(support, 0.75)) - median) / median
    line = rule.threshold(median, spread, floor=rule.claim, width=rule.claim_spread)
    found = engine._scored("general").consensus
    assert found is not None
    assert len(found.seeds) > 1
    walk = engine.walk()
    medians = seed_median(found)
    routes = {"line": 0, "backed": 0}
    for subject in scenario.ids[1::3]:
        decision = engine.claim(subject, "resident")
        if subject == viewer or not decision.accepted:
            continue
        node = walk.node(subject)
        assert node is not None
        on_line = table[subject] >= line and medians[node] >= rule.claim_seeds * table[subject]
        backers = [p[-1] for p in decision.paths]
        backed = table[subject] >= rule.claim_backed * median and all(
            table[b] >= rule.claim_backers * median for b in backers
        )
        assert on_line or backed, (subject, table[subject], decision)
        routes["line" if on_line else "backed"] += 1
    assert routes["line"] > 0, routes
    assert routes["backed"] > 0, routes


def test_the_rule_before_has_neither_route() -> None:
    before = DecisionParameters(claim_seeds=0.0, claim_backers=None)
    assert before.claim_seeds == 0.0
    assert before.claim_backers is None
    with pytest.raises(LocalProtocolError):
        DecisionParameters(claim_seeds=-0.1)
    with pytest.raises(LocalProtocolError):
        DecisionParameters(claim_backers=-1.0)
