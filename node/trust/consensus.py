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

**Cost.** Up to `DENSE_LIMIT` (2 000) members, every member's visit
vector is one row of F = (I - M)^-1, inverted densely once (~50 ms of CPU
at 1 000 members) and then kept by Woodbury updates (below): a seed is a
row read, whichever members the seeds are. Above, one block power
iteration for all seeds at once (`_visits_from`): about 70 sparse-times-
dense products of M with an n x (seeds + 1) block.

**Ties.** Two visits within `TIE` (1e-13) of each other count as equal in
a rank: above the rounding that separates an updated inverse from a fresh
one (1e-16 to 1e-15), below the closest distinct visits measured (1.8e-12
apart among 64 seeds x 1 000 members; with 1e-10, 2 members in 1 000 moved
by half a rank). Exactly tied members (symmetric places in the graph) then
rank the same however the vectors were computed, so an engine kept up to
date by corrections gives a fresh engine's scores (property-tested to
1e-9), and at 1 000 members the scores of the exact visits (the block
iteration run to 1e-14 gives the same to 1e-16; at its default 1e-7 it
put 2 members half a rank off).

**After an update** (`previous=`): the seeds' visit vectors are corrected
rather than solved again. If the matrix M changed only in rows U (a new or
revoked vouch changes its issuer's row), with D = M'[U] - M[U] the
Sherman-Morrison-Woodbury identity gives the new inverse exactly from the
old one:

    F' = F + F[:, U] K^-1 (D F),   K = I - (D F)[:, U]

(one pass over the dense F per changed row: ~1 ms at 1 000 members), and
above `DENSE_LIMIT` the seeds' vectors alone:

    V' = V + V[:, U] W,   W = D (I - M')^-1,

so one solve per changed row (not one per seed), with the same tolerance,
and none at all for a row no seed's walk visits (a farm's edges, a
stranger's); seeds that were not seeds before get a solve of their own.
More than `max_rows` changed rows, a shrunk graph, `refresh_every`
corrections in a row, or (above `DENSE_LIMIT`) `max_new_seeds` new seeds
or an arc gone: a full solve from scratch. Above `DENSE_LIMIT` the
corrected vectors agree with a full solve to the solver's tolerance, not
bit for bit: a rank can differ where two members' visits lie within that
tolerance of each other; a full solve (every `refresh_every` updates, or
`TrustEngine.recompute()`) gives exactly the numbers of a fresh engine.
The parts of `explain` sum to the displayed score either way (both are read
off the same ranks).

**One member's score** (`score_of`) reads that member's column only: the
support, the seeds and their vectors (`Seeded`, what `seeded` returns) are
shared by every score until the next change, and the table of all scores
(`table`, ranks for everyone) is built only when something asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from node.trust.corrections import (
    changed_rows,
    grown,
    inverted,
    padded,
    solve_block,
    woodbury,
)
from node.trust.graph import FloatArray, IndexArray
from node.trust.support import DEFAULT_EPSILON, Support, score_support
from node.trust.walk import RandomWalk
from protocol.errors import LocalProtocolError

__all__ = [
    "DEFAULT_SEEDS",
    "DENSE_LIMIT",
    "TIE",
    "Consensus",
    "ConsensusParameters",
    "Seeded",
    "consensus",
    "score_of",
    "seeded",
    "table",
]

DEFAULT_SEEDS = 64
"""Seeds drawn from the support besides the viewer (chosen by the study)."""

DENSE_LIMIT = 2000
"""Members up to which every visit vector is a row of a dense (I - M)^-1
(8 MB at 1 000, 32 MB at 2 000; its Woodbury update costs n^2 per changed row)."""

TIE = 1e-13
"""Visits closer than this count as equal in a rank (module doc, "Ties")."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsensusParameters:
    """Knobs of the corroborated score."""

    seeds: int = DEFAULT_SEEDS
    epsilon: float = DEFAULT_EPSILON
    tolerance: float = 1e-7  # L1 step at which each seed's walk counts as solved
    min_support: int = DEFAULT_SEEDS  # smaller supports: the viewer's walk alone
    refresh_every: int = 32  # corrections (see "After an update") between full solves
    max_rows: int = 8  # changed rows of M corrected in place; more: a full solve
    max_new_seeds: int = 16  # seeds solved anew after an update (a quarter); more: a full solve
    dense_limit: int = DENSE_LIMIT  # members up to which F = (I - M)^-1 is kept densely
    # Woodbury corrections of the dense F between fresh inversions: each adds
    # rounding of ~1e-16 x cond(I - M) (<= 9), to be kept well under `TIE`,
    # and an inversion costs ~250 ms of CPU at 1 000 members (1 ms a
    # correction, amortised).
    dense_refresh_every: int = 256

    def __post_init__(self) -> None:
        if self.seeds < 0:
            raise LocalProtocolError("seeds must be >= 0")
        if not 0.0 <= self.epsilon < 1.0:
            raise LocalProtocolError("epsilon must lie in [0, 1)")
        if (
            min(
                self.refresh_every,
                self.max_rows,
                self.max_new_seeds,
                self.dense_limit,
                self.dense_refresh_every,
            )
            < 0
        ):
            raise LocalProtocolError("update limits must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Seeded:
    """What every score of one walk reads, until its next change: the support,
    the seeds and their visit vectors (module doc)."""

    support: Support
    seeds: tuple[int, ...]  # node numbers; seeds[0] is the viewer
    # Row k: expected visits of the walk started at seeds[k]; None for the walk
    # alone (a support smaller than `min_support`).
    visits: FloatArray | None
    reference: IndexArray  # the support and the viewer, sorted: ranks are shares of it
    matrix: sp.csr_matrix | None  # the M the vectors solve (for the next correction)
    inverse: FloatArray | None = None  # F = (I - M)^-1, up to `dense_limit` members
    corrections: int = 0  # corrections carried since a full solve
    # visits[1:, reference], gathered on the first `score_of` (shared by later ones).
    _at_reference: list[FloatArray] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Consensus:
    """Every member's corroborated score, the seeds and their ranks."""

    support: Support
    seeds: tuple[int, ...]  # node numbers; seeds[0] is the viewer
    ranks: FloatArray  # ranks[k, x] = rank of x from seeds[k]
    base: FloatArray  # mean rank per member, before walls and flags (0: unreached)
    scores: FloatArray  # displayed scores
    # For the next update: every seed's visit vector (row k: seeds[k]), the
    # matrix they solve, and how many corrections they carry since a full
    # solve. None for the walk alone.
    visits: FloatArray | None = None
    matrix: sp.csr_matrix | None = None
    corrections: int = 0
    seeded: Seeded | None = None  # what the table was read off


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
    rhs = np.zeros((n, len(seeds)))
    rhs[seeds, np.arange(len(seeds))] = 1.0
    result: FloatArray = np.ascontiguousarray(solve_block(walk.matrix(), rhs, tolerance).T)
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


def _ranks(visits: FloatArray, reference: IndexArray) -> FloatArray:
    """Row k: the share of `reference` that visits[k] puts below each member
    (those within `TIE` count half).

    Each row's queries are searched in sorted order (searching unsorted
    queries costs 2-3 times more at 1 000 members, most of a corrected
    table's time).
    """
    size = reference.size
    ordered = np.sort(visits[:, reference], axis=1)
    order = np.argsort(visits, axis=1)
    queries = np.take_along_axis(visits, order, axis=1)
    ranks = np.empty_like(visits)
    for k in range(visits.shape[0]):
        lower = np.searchsorted(ordered[k], queries[k] - TIE, side="left")
        upper = np.searchsorted(ordered[k], queries[k] + TIE, side="right")
        ranks[k, order[k]] = (lower + upper) / (2.0 * size)
    return ranks


def _inverse(
    walk: RandomWalk, previous: Seeded | None, parameters: ConsensusParameters
) -> tuple[FloatArray, int]:
    """F = (I - M)^-1 for the walk's current M: the previous one updated by
    Woodbury (module doc), or inverted afresh. Returns F and the corrections it carries."""
    matrix = walk.matrix()
    n = matrix.shape[0]
    if previous is None or previous.inverse is None or previous.matrix is None:
        return inverted(matrix), 0
    old = previous.inverse
    if previous.corrections >= parameters.dense_refresh_every or old.shape[0] > n:
        return inverted(matrix), 0
    if matrix is previous.matrix:
        return old, previous.corrections
    changed = changed_rows(matrix, padded(previous.matrix, n), None, parameters.max_rows)
    if changed is None:
        return inverted(matrix), 0
    rows, delta = changed
    inverse = grown(old, n)
    if rows.size == 0:
        return inverse, previous.corrections
    return woodbury(inverse, rows, delta), previous.corrections + 1


def _corrected(
    walk: RandomWalk, previous: Seeded, seeds: list[int], parameters: ConsensusParameters
) -> tuple[FloatArray, int] | None:
    """The seeds' visits after the changes since `previous` (module doc), or None
    when a full solve is due. Returns the visits and the corrections they carry."""
    if previous.visits is None or previous.matrix is None:
        return None
    matrix = walk.matrix()
    n = matrix.shape[0]
    if previous.corrections >= parameters.refresh_every or previous.matrix.shape[0] > n:
        return None
    visits = np.zeros((previous.visits.shape[0], n))
    visits[:, : previous.visits.shape[1]] = previous.visits
    rows, delta = np.zeros(0, dtype=np.int64), np.zeros((0, n))
    if matrix is not previous.matrix:
        changed = changed_rows(matrix, padded(previous.matrix, n), visits, parameters.max_rows)
        if changed is None:
            return None
        rows, delta = changed[0], changed[1].toarray()
    index = {seed: k for k, seed in enumerate(previous.seeds)}
    missing = [s for s in seeds if s not in index]
    if len(missing) > parameters.max_new_seeds:
        return None
    # W = D (I - M')^-1 (i.e. W^T = D^T + M'^T W^T) and the new seeds' own
    # visits, in one block iteration on the new matrix.
    rhs = np.zeros((n, rows.size + len(missing)))
    rhs[:, : rows.size] = delta.T
    rhs[missing, rows.size + np.arange(len(missing))] = 1.0
    solution = solve_block(matrix, rhs, parameters.tolerance) if rhs.size else rhs
    corrections = previous.corrections
    if rows.size:
        visits += visits[:, rows] @ solution[:, : rows.size].T
        np.maximum(visits, 0.0, out=visits)  # rounding where the answer is 0
        corrections += 1
    fresh = solution[:, rows.size :].T
    out = np.empty((len(seeds), n))
    for k, seed in enumerate(seeds):
        out[k] = visits[index[seed]] if seed in index else fresh[missing.index(seed)]
    return out, corrections


def seeded(
    walk: RandomWalk,
    parameters: ConsensusParameters | None = None,
    *,
    previous: Seeded | None = None,
) -> Seeded:
    """The support, the seeds and their visit vectors for the walk as it is now.

    `previous`: what this walk's last call returned, before its latest
    changes, to correct rather than solve again (module doc, "After an
    update"). Nothing in `previous` is modified.
    """
    parameters = parameters or ConsensusParameters()
    visits = np.asarray(walk.visits())
    support = score_support(visits, visits, walk.viewer, epsilon=parameters.epsilon)
    reference = np.array(sorted(support.members | {walk.viewer}), dtype=np.int64)
    if len(support.members) < parameters.min_support:
        return Seeded(
            support=support, seeds=(walk.viewer,), visits=None, reference=reference, matrix=None
        )
    seeds = _seeds(walk, support, parameters.seeds)
    if len(walk.identities) <= parameters.dense_limit:
        inverse, corrections = _inverse(walk, previous, parameters)
        return Seeded(
            support=support, seeds=tuple(seeds), visits=inverse[seeds], reference=reference,
            matrix=walk.matrix(), inverse=inverse, corrections=corrections,
        )  # fmt: skip
    corrected = None if previous is None else _corrected(walk, previous, seeds, parameters)
    if corrected is None:
        from_seeds, corrections = _visits_from(walk, seeds, parameters.tolerance), 0
    else:
        from_seeds, corrections = corrected
    return Seeded(
        support=support, seeds=tuple(seeds), visits=from_seeds, reference=reference,
        matrix=walk.matrix(), corrections=corrections,
    )  # fmt: skip


def table(walk: RandomWalk, found: Seeded) -> Consensus:
    """Every member's score, read off `found` (what `seeded` returned for `walk`)."""
    if found.visits is None:
        return _walk_alone(walk, found.support)
    from_seeds = found.visits
    visits = np.asarray(walk.visits())
    ranks = np.empty_like(from_seeds)
    # The viewer's own part is its own walk's expected visits (capped at 1),
    # not a rank: so that how much the viewer vouched still shows (a vouch at
    # 80 for one's only contact is 0.64, at 30 it is 0.24), even in a
    # community of three.
    ranks[0] = np.clip(from_seeds[0], 0.0, 1.0)
    ranks[1:] = _ranks(from_seeds[1:], found.reference)
    # The mean, summed row by row in seed order: `score_of` adds one column
    # in the same order, so that both give the same number to the last bit.
    base = ranks[0].copy()
    for row in ranks[1:]:
        base += row
    base /= len(found.seeds)
    base[visits <= 0.0] = 0.0  # no path from the viewer: nothing to corroborate
    base[walk.viewer] = 1.0
    scores = base * (1.0 - np.asarray(walk.walls()))
    for node in walk.flagged():
        if node != walk.viewer and scores[node] > 0.0:
            scores[node] *= 1.0 - walk.penalty(node).total
    scores[walk.viewer] = 1.0
    return Consensus(
        support=found.support, seeds=found.seeds, ranks=ranks, base=base, scores=scores,
        visits=from_seeds, matrix=found.matrix, corrections=found.corrections, seeded=found,
    )  # fmt: skip


def score_of(walk: RandomWalk, found: Seeded, node: int) -> float | None:
    """`table(walk, found).scores[node]` without the table: one column of
    ranks. None for the walk alone (its table is what to read then)."""
    if found.visits is None:
        return None
    if node == walk.viewer:
        return 1.0
    if float(walk.visits()[node]) <= 0.0:
        return 0.0
    if not found._at_reference:
        found._at_reference.append(found.visits[1:, found.reference])
    at_reference = found._at_reference[0]
    column = found.visits[1:, node, None]
    lower = np.count_nonzero(at_reference < column - TIE, axis=1)
    upper = np.count_nonzero(at_reference <= column + TIE, axis=1)
    size = found.reference.size
    base = min(max(float(found.visits[0, node]), 0.0), 1.0)
    for rank in ((lower + upper) / (2.0 * size)).tolist():
        base += rank
    base /= len(found.seeds)
    score = base * (1.0 - walk.wall(node))
    if score > 0.0 and walk.flags_on(node):
        score *= 1.0 - walk.penalty(node).total
    return score


def consensus(
    walk: RandomWalk,
    parameters: ConsensusParameters | None = None,
    *,
    previous: Consensus | None = None,
) -> Consensus:
    """The corroborated score of every member; see the module doc.

    `previous`: this walk's consensus before its latest changes, to correct
    rather than solve again (module doc, "After an update").
    """
    before = None if previous is None else previous.seeded
    return table(walk, seeded(walk, parameters, previous=before))
