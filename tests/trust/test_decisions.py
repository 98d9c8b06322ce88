"""Yes/no thresholds derived per viewer from its support's score distribution."""

from __future__ import annotations

import numpy as np
import pytest

from node.trust import TrustEngine
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
    # A member below the claim line has no claim accepted (the viewer certified none).
    claim_line = rule.threshold(median, spread, floor=rule.claim, width=rule.claim_spread)
    low = [i for i, s in table.items() if 0.0 < s < claim_line and i != viewer]
    assert all(not engine.claim(i, "resident").accepted for i in low[:20])
