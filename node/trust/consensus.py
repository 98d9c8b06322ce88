"""The default score: the viewer's walk, corroborated by the members it stands behind.

A walk from the viewer alone ranks an identity farm hooked onto the viewer's
closest contacts like their own friends (issue 22: AUC 0.70-0.74 at 1 000
members when ten close contacts each vouch for one farm identity): from the
viewer, the farm *is* close. From almost anyone else in the community it is
far, behind the same ten edges. So the score asks the viewer's support
(`node.trust.support`: the members holding all but the faintest `epsilon`
of the viewer's walk mass) rather than the viewer alone.

**Definition.** Pick `seeds` members of the support, evenly spread along it
by the viewer's visits (all of them if the support is smaller), plus the
viewer. For each seed s, a walk with the same rules (restart, the viewer's
walls) starts at s; rank_s(x) is the share of support members that s's walk
visits less than x (ties count half), in [0, 1]; the viewer's own part is
its walk's expected visits to x, capped at 1 (so that the strength of its
own vouches shows, even in a community of three). Then

    score(x) = mean over seeds of rank_s(x) x (1 - wall(x)) x (1 - flags(x)),

and 0 for a member the viewer's own walk never reaches (no path), 1 for the
viewer. It reads: "on average over the people you stand behind, x is better
connected than this share of them". The sum over seeds is the explanation
(`TrustEngine.explain` lists each seed's part; the parts add up to the
score), beside the viewer's own walk's first-hop split.

**Why it resists farms.** Ranks are taken against the support, whose farm
share is bounded by the farm's walk mass, not by its identity count; a farm
identity ranks high only from seeds next to its attack edges, so its mean is
low unless the attack edges are everywhere. Measured by
`simulations.community_study` (AUC and farm members above the honest 10th
percentile per attack edge, targeted attacks, four shapes).

**Small communities.** With fewer than `min_support` (64) members in the
support, the score is the viewer's walk alone (reach probability, the
score before issue 22): seeds would then be the whole support, and an
identity farm that outnumbers the community (the walkthrough's 20 farm
identities behind one of 6 neighbours) would outvote it. A farm larger than
the honest region it hangs from defeats the consensus at any size: at 100
members with a 300-identity farm on the viewer's closest contacts, see the
study.

**Cost.** One block power iteration for all seeds at once (`_visits_from`):
about 70 sparse-times-dense products of M with an n x (seeds + 1) block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from node.trust.graph import FloatArray
from node.trust.support import DEFAULT_EPSILON, Support, score_support
from node.trust.walk import RandomWalk
from protocol.errors import LocalProtocolError

__all__ = ["DEFAULT_SEEDS", "Consensus", "ConsensusParameters", "consensus"]

DEFAULT_SEEDS = 64
"""Seeds drawn from the support besides the viewer (chosen by the study)."""

_MAX_STEPS = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusParameters:
    """Knobs of the corroborated score."""

    seeds: int = DEFAULT_SEEDS
    epsilon: float = DEFAULT_EPSILON
    tolerance: float = 1e-7  # L1 step at which each seed's walk counts as solved
    min_support: int = DEFAULT_SEEDS  # smaller supports: the viewer's walk alone

    def __post_init__(self) -> None:
        if self.seeds < 0:
            raise LocalProtocolError("seeds must be >= 0")
        if not 0.0 <= self.epsilon < 1.0:
            raise LocalProtocolError("epsilon must lie in [0, 1)")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Consensus:
    """Every member's corroborated score, the seeds and their ranks."""

    support: Support
    seeds: tuple[int, ...]  # node numbers; seeds[0] is the viewer
    ranks: FloatArray  # ranks[k, x] = rank of x from seeds[k]
    base: FloatArray  # mean rank per member, before walls and flags (0: unreached)
    scores: FloatArray  # displayed scores


def _seeds(walk: RandomWalk, support: Support, count: int) -> list[int]:
    visits = np.asarray(walk.visits())
    members = np.array(sorted(support.members), dtype=np.int64)
    if members.size == 0:
        return [walk.viewer]
    members = members[np.lexsort((members, -visits[members]))]
    if members.size > count:
        positions = ((np.arange(count) + 0.5) * members.size / count).astype(np.int64)
        members = members[positions]
    return [walk.viewer, *(int(m) for m in members if int(m) != walk.viewer)]


def _visits_from(walk: RandomWalk, seeds: list[int], tolerance: float) -> FloatArray:
    """Row k: expected visits of a walk started at seeds[k] (same matrix M).

    One block power iteration X <- E + M^T X for all seeds together: each
    step is one sparse-times-dense product, and the error shrinks by at least
    1 - restart per step, so ~70 steps reach 1e-7 whatever the graph (a
    sparse LU of I - M fills in badly on community graphs: 4x slower here).
    """
    n = len(walk.identities)
    transposed = walk.matrix().T.tocsr()
    rhs = np.zeros((n, len(seeds)))
    rhs[seeds, np.arange(len(seeds))] = 1.0
    solution = rhs.copy()
    for _ in range(_MAX_STEPS):
        following = rhs + transposed @ solution
        step = float(np.abs(following - solution).sum(axis=0).max(initial=0.0))
        solution = following
        if step < tolerance:
            break
    result: FloatArray = np.ascontiguousarray(solution.T)
    return result


def _walk_alone(walk: RandomWalk, support: Support) -> Consensus:
    """Too small a support to ask: the viewer's walk alone (one seed, its score)."""
    scores = np.asarray(walk.scores_all(), dtype=np.float64)
    base = scores.copy()
    walls = np.asarray(walk.walls())
    for node in np.flatnonzero(base > 0.0).tolist():
        factor = 1.0 - walls[node]
        if node != walk.viewer and walk.flags_on(node):
            factor *= 1.0 - walk.penalty(node).total
        base[node] = scores[node] / factor if factor > 0.0 else 0.0
    return Consensus(
        support=support, seeds=(walk.viewer,), ranks=base[None, :], base=base, scores=scores
    )


def consensus(walk: RandomWalk, parameters: ConsensusParameters | None = None) -> Consensus:
    """The corroborated score of every member; see the module doc."""
    parameters = parameters or ConsensusParameters()
    visits = np.asarray(walk.visits())
    support = score_support(visits, visits, walk.viewer, epsilon=parameters.epsilon)
    if len(support.members) < parameters.min_support:
        return _walk_alone(walk, support)
    seeds = _seeds(walk, support, parameters.seeds)
    from_seeds = _visits_from(walk, seeds, parameters.tolerance)
    reference = np.array(sorted(support.members | {walk.viewer}), dtype=np.int64)
    ranks = np.empty_like(from_seeds)
    # The viewer's own part is its own walk's expected visits (capped at 1),
    # not a rank: so that how much the viewer vouched still shows (a vouch at
    # 80 for one's only contact is 0.64, at 30 it is 0.24), even in a
    # community of three.
    ranks[0] = np.minimum(from_seeds[0], 1.0)
    for k in range(1, len(seeds)):
        row = from_seeds[k]
        ordered = np.sort(row[reference])
        lower = np.searchsorted(ordered, row, side="left")
        upper = np.searchsorted(ordered, row, side="right")
        ranks[k] = (lower + upper) / (2.0 * reference.size)
    base = ranks.mean(axis=0)
    base[visits <= 0.0] = 0.0  # no path from the viewer: nothing to corroborate
    base[walk.viewer] = 1.0
    scores = base * (1.0 - np.asarray(walk.walls()))
    flagged = [x for x in range(len(scores)) if scores[x] > 0.0 and walk.flags_on(x)]
    for node in flagged:
        if node != walk.viewer:
            scores[node] *= 1.0 - walk.penalty(node).total
    scores[walk.viewer] = 1.0
    return Consensus(support=support, seeds=tuple(seeds), ranks=ranks, base=base, scores=scores)
