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
about 70 sparse-times-dense products of M with an n x (seeds + 1) block
(~70 ms at 1 000 members and 20 000 arcs).

**After an update** (`previous=`): the seeds' visit vectors are corrected
rather than solved again. If the matrix M changed only in rows U (a new or
revoked vouch changes its issuer's row), the Sherman-Morrison-Woodbury
identity gives the new vectors exactly from the old ones:

    V' = V + V[:, U] W,   W = D (I - M')^-1,   D = M'[U] - M[U],

so one solve per changed row (not one per seed), with the same tolerance,
and none at all for a row no seed's walk visits (a farm's edges, a
stranger's). Seeds that were not seeds before get a solve of their own.
More than `max_rows` changed rows or `max_new_seeds` new seeds, a shrunk
graph, or `refresh_every` corrections in a row: a full solve from scratch.
The corrected vectors agree with a full solve to the solver's tolerance, not
bit for bit: a rank can differ where two members' visits lie within that
tolerance of each other, and a full solve (every `refresh_every` updates,
or `TrustEngine.recompute()`) gives exactly the numbers of a fresh engine.
The parts of `explain` sum to the displayed score either way (both are read
off the same ranks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from node.trust.graph import FloatArray, IndexArray
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
    refresh_every: int = 32  # corrections (see "After an update") between full solves
    max_rows: int = 8  # changed rows of M corrected in place; more: a full solve
    max_new_seeds: int = 16  # seeds solved anew after an update (a quarter); more: a full solve

    def __post_init__(self) -> None:
        if self.seeds < 0:
            raise LocalProtocolError("seeds must be >= 0")
        if not 0.0 <= self.epsilon < 1.0:
            raise LocalProtocolError("epsilon must lie in [0, 1)")
        if min(self.refresh_every, self.max_rows, self.max_new_seeds) < 0:
            raise LocalProtocolError("update limits must be >= 0")


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
    result: FloatArray = np.ascontiguousarray(_solve(walk.matrix(), rhs, tolerance).T)
    return result


def _solve(matrix: sp.csr_matrix, rhs: FloatArray, tolerance: float) -> FloatArray:
    """X = rhs + M^T X for a block of columns, until every column's L1 step is < tolerance.

    Right-hand sides may be signed (a correction's D): the iteration only
    needs M's rows to sum to at most 1 - restart.
    """
    transposed = matrix.T.tocsr()
    solution = rhs.copy()
    for _ in range(_MAX_STEPS):
        following = rhs + transposed @ solution
        step = float(np.abs(following - solution).sum(axis=0).max(initial=0.0))
        solution = following
        if step < tolerance:
            break
    return solution


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
    """Row k: the share of `reference` that visits[k] puts below each member (ties half).

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
        lower = np.searchsorted(ordered[k], queries[k], side="left")
        upper = np.searchsorted(ordered[k], queries[k], side="right")
        ranks[k, order[k]] = (lower + upper) / (2.0 * size)
    return ranks


def _padded(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """`matrix` with empty rows and columns appended up to n x n (members added since)."""
    if matrix.shape[0] == n:
        return matrix
    tail = np.full(n - matrix.shape[0], matrix.indptr[-1])
    return sp.csr_matrix(
        (matrix.data, matrix.indices, np.append(matrix.indptr, tail)), shape=(n, n)
    )


def _changed_rows(
    matrix: sp.csr_matrix, before: sp.csr_matrix, visits: FloatArray, limit: int
) -> tuple[IndexArray, FloatArray] | None:
    """Rows U of M that changed where a seed's walk goes, and D = M'[U] - M[U];
    None if more than `limit`, or if an arc is gone (someone may then no longer
    be reachable from a seed, where a correction would leave rounding
    instead of an exact 0: a full solve is due)."""
    change = (matrix - before).tocsr()
    change.eliminate_zeros()
    rows = np.flatnonzero(np.diff(change.indptr))
    # A row no seed's walk visits changes nobody's vectors (V[:, u] = 0).
    rows = rows[np.abs(visits[:, rows]).max(axis=0, initial=0.0) > 0.0]
    if rows.size > limit:
        return None
    for u in rows.tolist():
        old = before.indices[before.indptr[u] : before.indptr[u + 1]]
        if not np.isin(old, matrix.indices[matrix.indptr[u] : matrix.indptr[u + 1]]).all():
            return None
    return rows, change[rows].toarray()


def _corrected(
    walk: RandomWalk, previous: Consensus, seeds: list[int], parameters: ConsensusParameters
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
        changed = _changed_rows(matrix, _padded(previous.matrix, n), visits, parameters.max_rows)
        if changed is None:
            return None
        rows, delta = changed
    index = {seed: k for k, seed in enumerate(previous.seeds)}
    missing = [s for s in seeds if s not in index]
    if len(missing) > parameters.max_new_seeds:
        return None
    # W = D (I - M')^-1 (i.e. W^T = D^T + M'^T W^T) and the new seeds' own
    # visits, in one block iteration on the new matrix.
    rhs = np.zeros((n, rows.size + len(missing)))
    rhs[:, : rows.size] = delta.T
    rhs[missing, rows.size + np.arange(len(missing))] = 1.0
    solution = _solve(matrix, rhs, parameters.tolerance) if rhs.size else rhs
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
    parameters = parameters or ConsensusParameters()
    visits = np.asarray(walk.visits())
    support = score_support(visits, visits, walk.viewer, epsilon=parameters.epsilon)
    if len(support.members) < parameters.min_support:
        return _walk_alone(walk, support)
    seeds = _seeds(walk, support, parameters.seeds)
    corrected = None if previous is None else _corrected(walk, previous, seeds, parameters)
    if corrected is None:
        from_seeds, corrections = _visits_from(walk, seeds, parameters.tolerance), 0
    else:
        from_seeds, corrections = corrected
    reference = np.array(sorted(support.members | {walk.viewer}), dtype=np.int64)
    ranks = np.empty_like(from_seeds)
    # The viewer's own part is its own walk's expected visits (capped at 1),
    # not a rank: so that how much the viewer vouched still shows (a vouch at
    # 80 for one's only contact is 0.64, at 30 it is 0.24), even in a
    # community of three.
    ranks[0] = np.minimum(from_seeds[0], 1.0)
    ranks[1:] = _ranks(from_seeds[1:], reference)
    base = ranks.mean(axis=0)
    base[visits <= 0.0] = 0.0  # no path from the viewer: nothing to corroborate
    base[walk.viewer] = 1.0
    scores = base * (1.0 - np.asarray(walk.walls()))
    for node in walk.flagged():
        if node != walk.viewer and scores[node] > 0.0:
            scores[node] *= 1.0 - walk.penalty(node).total
    scores[walk.viewer] = 1.0
    return Consensus(
        support=support, seeds=tuple(seeds), ranks=ranks, base=base, scores=scores,
        visits=from_seeds, matrix=walk.matrix(), corrections=corrections,
    )  # fmt: skip
