"""The score's support: the members the viewer's walk really stands behind.

Yes/no answers (`TrustEngine.accepted`, the members a `claim` may rest on)
come from the graded score rather than from a capacity schedule by
distance: a capacity schedule either starves members three or more hops
away (issue 22: 27 % of honest members accepted at 1 000) or, scaled up,
hands every confused close contact a capacity large enough for an identity
farm.

**Definition.** Sort the members the walk reaches (the viewer excluded) by a
score, highest first (ties by node number): the consensus passes the walk's
own visits, `score_method="walk"` the walk's displayed scores. Walk along that order
adding each member's expected visits V_s (the walk's trust *mass*, which
sums to at most 1/restart whatever the graph). The support is the longest
prefix whose mass stays within 1 - `epsilon` of the total: the members
holding the last `epsilon` share of the mass, the faintest ones, are left
out. The threshold is the score of the last member kept.

**Why mass, not a count or a quantile.** An identity farm can add as many
identities as it likes; a quantile of the score distribution would follow
them down. Mass cannot: the farm's total visits are at most
F (1 - restart) / restart, F the walk mass crossing its attack edges
(research note §1.2), however many identities it holds. So the threshold
moves by at most that mass, and never grows with identities that strangers
create. The members left out are the far and faint ones; whatever is left
out can still be looked at with `score`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from node.trust.graph import FloatArray

__all__ = ["DEFAULT_EPSILON", "Support", "score_support"]

DEFAULT_EPSILON = 0.002
"""Share of the walk's mass left out (chosen by `simulations.community_study`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Support:
    """The members kept, and the lowest score among them."""

    members: frozenset[int]
    threshold: float
    epsilon: float


def score_support(
    scores: FloatArray, visits: FloatArray, viewer: int, *, epsilon: float = DEFAULT_EPSILON
) -> Support:
    """The support of `scores` (node numbers), see the module doc."""
    if not 0.0 <= epsilon < 1.0:
        raise ValueError("epsilon must lie in [0, 1)")
    candidates = np.flatnonzero(scores > 0.0)
    candidates = candidates[candidates != viewer]
    if candidates.size == 0:
        return Support(members=frozenset(), threshold=1.0, epsilon=epsilon)
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    mass = np.maximum(visits[order], 0.0)
    total = float(mass.sum())
    if total <= 0.0:
        kept = order
    else:
        cumulative = np.cumsum(mass)
        # Keep members while the mass before them is within budget: the first
        # member is always kept, and a member whose own mass crosses the line
        # is kept too (the line falls inside it).
        before = cumulative - mass
        kept = order[before < (1.0 - epsilon) * total]
    threshold = float(scores[kept[-1]]) if kept.size else 1.0
    # Members tied with the last one kept are kept too (the answer never
    # depends on the order of equal scores).
    members = candidates[scores[candidates] >= threshold]
    return Support(members=frozenset(members.tolist()), threshold=threshold, epsilon=epsilon)
