"""Yes/no thresholds derived per viewer from its support's score distribution."""

from __future__ import annotations

import numpy as np
import pytest

from node.trust import RandomWalk, TrustEngine, TrustGraph
from node.trust.decisions import _anchored_chains, seed_median
from node.trust.engine import DecisionParameters
from protocol.errors import LocalProtocolError
from simulations.community_study import BACKED_RULE, NOW, build
from tests.trust.graphs import NODE_IDS


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
def test_every_accepted_claim_stands_on_one_of_the_three_routes() -> None:
    """On the line with its seeds' median >= claim_seeds x its score, backed:
    every counted chain ends at a certifier >= claim_backers x median, or
    anchored: one does, with a seeds' median >= claim_anchor x median."""
    scenario = build("streets", 300, "targeted", 1)
    viewer = scenario.ids[scenario.viewer]
    engine = TrustEngine(viewer, now_ms=NOW, attestations=scenario.attestations)
    table = engine.scores()
    rule = engine.decision_parameters
    assert rule.claim_backers is not None
    assert rule.claim_anchor is not None
    support = [table[i] for i in engine.support()]
    median = float(np.median(support))
    spread = (float(np.quantile(support, 0.75)) - median) / median
    line = rule.threshold(median, spread, floor=rule.claim, width=rule.claim_spread)
    found = engine._scored("general").consensus
    assert found is not None
    assert len(found.seeds) > 1
    walk = engine.walk()
    medians = seed_median(found)
    routes = {"line": 0, "backed": 0, "anchored": 0}
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
        anchored = table[subject] >= rule.claim_backed * median and any(
            table[b] >= rule.claim_backers * median
            and medians[walk.node(b) or 0] >= rule.claim_anchor * median
            for b in backers
        )
        assert decision.independent >= 2
        assert on_line or backed or anchored, (subject, table[subject], decision)
        routes["line" if on_line else "backed" if backed else "anchored"] += 1
    assert routes["line"] > 0, routes
    assert routes["backed"] > 0, routes  # (the anchored route: the test below)


@pytest.mark.slow
def test_the_anchored_route_accepts_what_the_backed_route_missed_and_no_farm_claim() -> None:
    """Genuine claims the 2026-12-02b rule rejected for a weak second certifier
    are accepted when the other is a broadly ranked anchor; the farm's claims,
    certified by its entries (lifted by the seeds next to the attack edges),
    are not (seed 0 was in the tuning set: this is the rule's own check)."""
    scenario = build("streets", 1000, "random", 0)
    viewer = scenario.ids[scenario.viewer]
    new = TrustEngine(viewer, now_ms=NOW, attestations=scenario.attestations)
    before = TrustEngine(
        viewer, now_ms=NOW, attestations=scenario.attestations, decision_parameters=BACKED_RULE
    )
    median = float(np.median([new.score(i) for i in new.support()]))
    gained = []
    for subject in scenario.ids[1 : scenario.honest : 4]:
        now, then = new.claim(subject, "resident"), before.claim(subject, "resident")
        assert then.accepted <= now.accepted  # the new route only adds
        if now.accepted and not then.accepted:
            gained.append(now)
            strong = [p[-1] for p in now.paths if new.score(p[-1]) >= 0.9 * median]
            assert strong, now
            assert len(now.paths) == 2, now
    assert gained
    farm = scenario.ids[scenario.honest :]
    assert sum(new.claim(x, "resident").accepted for x in farm) <= scenario.attack_edges


def _walk(weights: dict[tuple[int, int], float]) -> RandomWalk:
    ids = NODE_IDS[:8]
    graph = TrustGraph.from_weights({(ids[a], ids[b]): w for (a, b), w in weights.items()},
                                    identities=ids)  # fmt: skip
    return RandomWalk(graph, ids[0])


def test_anchored_chains_keep_the_anchor_whatever_the_flow_picks() -> None:
    """Certifiers 3 and 4 are reached only through member 1, certifier 5 through
    member 2: two disjoint chains exist to {3, 5} or {4, 5}. With 4 the anchor,
    the chains found end at 4 and 5; with two certifiers behind one member
    only, there is no pair at all."""
    walk = _walk({(0, 1): 1.0, (0, 2): 1.0, (1, 3): 1.0, (1, 4): 1.0, (2, 5): 1.0})
    node = {i: walk.node(NODE_IDS[i]) or 0 for i in range(6)}
    certifiers = [node[3], node[4], node[5]]
    allowed = frozenset(node.values())
    found = _anchored_chains(walk, certifiers, [node[4]], 2, allowed)
    assert found is not None
    assert found.count == 2
    assert sorted(p[-1] for p in found.paths) == sorted([node[4], node[5]])
    assert _anchored_chains(walk, [node[3], node[4]], [node[4]], 2, allowed) is None
    # An anchor the gate does not let through counts for nothing.
    gated = allowed - {node[2]}
    assert _anchored_chains(walk, certifiers, [node[5]], 2, gated) is None


def test_the_rule_before_has_neither_route() -> None:
    before = DecisionParameters(claim_seeds=0.0, claim_backers=None, claim_anchor=None)
    assert before.claim_seeds == 0.0
    assert before.claim_backers is None
    assert before.claim_anchor is None
    with pytest.raises(LocalProtocolError):
        DecisionParameters(claim_anchor=-0.5)
    with pytest.raises(LocalProtocolError):
        DecisionParameters(claim_seeds=-0.1)
    with pytest.raises(LocalProtocolError):
        DecisionParameters(claim_backers=-1.0)
