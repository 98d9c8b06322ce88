"""The default metric: a personalised random walk with restart from the viewer.

The walk (MeritRank family, deterministic: computed exactly, never sampled)
starts at the viewer s. At a member u it stops with probability `restart`;
otherwise it follows one of u's positive vouches, chosen with probability
w(u, v) / max(1, W(u)), where W(u) is the sum of u's vouch weights
(value/100). So a member who vouches for ten people at 1.0 sends a walk to
each with probability 0.1, and a member whose only vouch is a hesitant 0.3
lets the walk go on with probability 0.3 and stops it otherwise: weak vouches
carry less, however few they are. A dead end (no positive vouch) stops the
walk. Negative edges are never walked.

**Restart.** The default 0.2 makes chains 4 hops long on average. A larger
restart keeps trust closer to the viewer: less mass leaks to an identity farm
behind a confused member (the Sybil mass is at most (1 - restart)/restart times
the walk mass that crosses attack edges, research note §1.2), but honest
members far away fade faster too, which lowers the ranking quality (AUC).

**Displayed score.** score(x) is the probability that a walk of vouches started
by the viewer ever reaches x (the viewer has 1), times the wall and flag
factors below. Reaching x is computed exactly as Y_x[s] / Y_x[x] from the
reverse system (`node.trust.solve`).

**Distrust.** The viewer's own distrust of x at strength b = |value|/100 is an
absorbing wall: a walk arriving at x is absorbed with probability b, so x's
score is multiplied by 1 - b and only a fraction 1 - b of walks goes on from
x. Distrust stated by other members (flags) never moves a walk (no "curse
attack": the flagged cannot steer where a liar's distrust lands). Each flag is
a bounded penalty: flagger f removes at most `flag_weight` x strength x
standing(f) of x's score, where standing(f) in [0, 1] is the expected number of
visits to f by walks that have not passed through x, capped at 1 (x's own
friends do not gain standing against x through x). Penalties combine with
diminishing returns, 1 - prod(1 - p_f), capped at `max_flag_penalty`. So one
liar, however trusted, removes at most 20 % by default.

**Incremental updates.** The visit vector V_s = e_s (I - M)^-1 is kept by
forward push with signed residuals (Andersen-Chung-Lang push; Zhang, Lofgren
and Goel, KDD 2016): we hold p and r with V_s = p + r (I - M)^-1. Changing row
u of M to M' keeps that true with r += p[u] (M'[u] - M[u]); pushing r[u] to
u's successors restores small residuals. Since rows of (I - M)^-1 sum to at
most 1/restart, |V_s - p|_1 <= |r|_1 / restart: that drift bound is reported
with each update, and an exact recompute runs when it passes `drift_limit` or
when a push runs past `push_budget` (edges next to the viewer move a lot of
mass; a full solve is cheaper then).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla

from node.trust.graph import FloatArray, IndexArray, TrustGraph
from node.trust.solve import solve_system
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityId

__all__ = ["FlagPenalty", "RandomWalk", "Reach", "UpdateReport", "WalkParameters"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WalkParameters:
    """Knobs of the walk metric; the defaults are the documented ones."""

    restart: float = 0.2
    tolerance: float = 1e-10
    flag_weight: float = 0.2
    max_flag_penalty: float = 0.9
    push_epsilon: float = 1e-10
    push_budget: int = 3000
    drift_limit: float = 1e-6

    def __post_init__(self) -> None:
        if not 0.0 < self.restart < 1.0:
            raise LocalProtocolError("restart must lie in (0, 1)")
        if not 0.0 <= self.flag_weight <= 1.0 or not 0.0 <= self.max_flag_penalty <= 1.0:
            raise LocalProtocolError("flag weights must lie in [0, 1]")
        if self.tolerance <= 0.0 or self.push_epsilon <= 0.0 or self.drift_limit <= 0.0:
            raise LocalProtocolError("tolerances must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateReport:
    """What one incremental update cost and how exact the visits still are."""

    pushes: int
    recomputed: bool
    drift_bound: float


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Reach:
    """The reverse solve for one target: expected visits to it from every member."""

    target: int
    visits_to_target: FloatArray  # Y_x[u] for every u

    def from_node(self, node: int) -> float:
        """Probability that a walk started at `node` reaches the target."""
        own = float(self.visits_to_target[self.target])
        if own <= 0.0:
            return 0.0
        return min(1.0, max(0.0, float(self.visits_to_target[node]) / own))


@dataclass(frozen=True, slots=True, kw_only=True)
class FlagPenalty:
    """The flags on one member and how much of its score they removed."""

    total: float
    by_flagger: tuple[tuple[int, float, float], ...]  # (flagger, strength, share removed)


class _BudgetExceededError(Exception):
    """A push ran past its budget; the caller recomputes exactly instead."""


class RandomWalk:
    """The walk metric from one viewer over one context's graph, kept up to date."""

    def __init__(
        self,
        graph: TrustGraph,
        viewer: IdentityId,
        parameters: WalkParameters | None = None,
    ) -> None:
        self.parameters = parameters or WalkParameters()
        self._base = graph
        self._identities = list(graph.identities)
        self._index = dict(graph.index)
        self._overlay: dict[int, dict[int, float]] = {}
        self._distrust: dict[int, dict[int, float]] = {}  # subject -> issuer -> strength
        for (issuer, subject), strength in graph.distrust.items():
            self._distrust.setdefault(subject, {})[issuer] = strength
        self.viewer = self._intern(viewer)
        self._walls = np.zeros(len(self._identities))
        for subject, issuers in self._distrust.items():
            self._walls[subject] = issuers.get(self.viewer, 0.0)
        self._matrix: sp.csr_matrix | None = None
        self._reach_cache: dict[int, Reach] = {}
        self._from_cache: dict[int, FloatArray] = {}
        self._visits = np.zeros(len(self._identities))
        self._residual = np.zeros(len(self._identities))
        self._residual_l1 = 0.0
        self.updates_since_recompute = 0
        self.recompute()

    # -- identities ----------------------------------------------------------------

    @property
    def identities(self) -> list[IdentityId]:
        """Identities by node number (appended in arrival order after a rebuild)."""
        return self._identities

    def node(self, identity: IdentityId) -> int | None:
        """The node number of `identity`, if it is in the graph."""
        return self._index.get(identity)

    def _intern(self, identity: IdentityId) -> int:
        node = self._index.get(identity)
        if node is None:
            node = len(self._identities)
            self._identities.append(identity)
            self._index[identity] = node
            if hasattr(self, "_visits"):
                self._visits = np.append(self._visits, 0.0)
                self._residual = np.append(self._residual, 0.0)
                self._walls = np.append(self._walls, 0.0)
                self._matrix = None
        return node

    # -- rows and matrix -------------------------------------------------------------

    def out_edges(self, node: int) -> tuple[IndexArray, FloatArray]:
        """Subjects and weights of `node`'s positive vouches, as they are now."""
        row = self._overlay.get(node)
        if row is not None:
            cols = np.fromiter(row.keys(), dtype=np.int64, count=len(row))
            return cols, np.fromiter(row.values(), dtype=np.float64, count=len(row))
        if node < self._base.size:
            return self._base.out_edges(node)
        return np.zeros(0, dtype=np.int64), np.zeros(0)

    def transition_row(self, node: int) -> tuple[IndexArray, FloatArray]:
        """Where a walk at `node` goes next, with what probability (restart and wall in)."""
        cols, weights = self.out_edges(node)
        if cols.size == 0:
            return cols, weights
        scale = (1.0 - self.parameters.restart) * (1.0 - self._walls[node])
        return cols, weights * (scale / max(1.0, float(weights.sum())))

    def wall(self, node: int) -> float:
        """Strength of the viewer's own distrust of `node` (0 if none)."""
        return float(self._walls[node])

    def flags_on(self, node: int) -> dict[int, float]:
        """Distrust of `node` by members other than the viewer: flagger -> strength."""
        return {i: s for i, s in self._distrust.get(node, {}).items() if i != self.viewer}

    def matrix(self) -> sp.csr_matrix:
        """The current transition matrix M (materialised after updates, then cached)."""
        if self._matrix is None:
            self._matrix = self._build_matrix()
        return self._matrix

    def weight_matrix(self) -> sp.csr_matrix:
        """The current positive vouch weights (value/100) as a matrix, walls not applied."""
        rows, cols, weights = self._current_arrays()
        n = len(self._identities)
        return sp.csr_matrix((weights, (rows, cols)), shape=(n, n))

    def _current_arrays(self) -> tuple[IndexArray, IndexArray, FloatArray]:
        base = self._base
        rows = np.repeat(np.arange(base.size, dtype=np.int64), np.diff(base.indptr))
        cols, weights = base.indices, base.weights
        if self._overlay:
            keep = ~np.isin(rows, np.fromiter(self._overlay, dtype=np.int64))
            extra = [(u, v, w) for u, row in self._overlay.items() for v, w in row.items()]
            rows = np.concatenate([rows[keep], np.array([e[0] for e in extra], dtype=np.int64)])
            cols = np.concatenate([cols[keep], np.array([e[1] for e in extra], dtype=np.int64)])
            weights = np.concatenate([weights[keep], np.array([e[2] for e in extra])])
        return rows, cols, weights

    def _build_matrix(self) -> sp.csr_matrix:
        n = len(self._identities)
        rows, cols, weights = self._current_arrays()
        sums = np.bincount(rows, weights=weights, minlength=n)
        scale = (1.0 - self.parameters.restart) * (1.0 - self._walls) / np.maximum(sums, 1.0)
        return sp.csr_matrix((weights * scale[rows], (rows, cols)), shape=(n, n))

    def walls(self) -> FloatArray:
        """The viewer's wall strength for every node (read-only view)."""
        view = self._walls.view()
        view.flags.writeable = False
        return view

    # -- exact solves ---------------------------------------------------------------

    def recompute(self) -> None:
        """Solve the visits exactly from the current graph; residuals become zero."""
        n = len(self._identities)
        rhs = np.zeros(n)
        rhs[self.viewer] = 1.0
        self._visits = solve_system(self.matrix().T, rhs, tolerance=self.parameters.tolerance)
        self._residual = np.zeros(n)
        self._residual_l1 = 0.0
        self.updates_since_recompute = 0

    def visits(self) -> FloatArray:
        """Expected visits of the viewer's walk to every node (read-only view)."""
        view = self._visits.view()
        view.flags.writeable = False
        return view

    @property
    def drift_bound(self) -> float:
        """Upper bound on the L1 distance between `visits()` and the exact vector."""
        return self._residual_l1 / self.parameters.restart

    def reach(self, node: int) -> Reach:
        """The reverse solve for `node` (cached until the next update)."""
        cached = self._reach_cache.get(node)
        if cached is None:
            rhs = np.zeros(len(self._identities))
            rhs[node] = 1.0
            solution = solve_system(self.matrix(), rhs, tolerance=self.parameters.tolerance)
            cached = Reach(target=node, visits_to_target=solution)
            self._reach_cache[node] = cached
        return cached

    def visits_from(self, node: int) -> FloatArray:
        """Expected visits of a walk started at `node` (cached until the next update)."""
        cached = self._from_cache.get(node)
        if cached is None:
            rhs = np.zeros(len(self._identities))
            rhs[node] = 1.0
            cached = solve_system(self.matrix().T, rhs, tolerance=self.parameters.tolerance)
            self._from_cache[node] = cached
        return cached

    # -- scores ---------------------------------------------------------------------

    def penalty(self, node: int, *, reached: float | None = None) -> FlagPenalty:
        """The bounded penalty that other members' flags put on `node`."""
        flags = self.flags_on(node)
        if not flags or node == self.viewer:
            return FlagPenalty(total=0.0, by_flagger=())
        hit = self.reach(node).from_node(self.viewer) if reached is None else reached
        after_node = self.visits_from(node)
        kept = 1.0
        parts: list[tuple[int, float, float]] = []
        for flagger in sorted(flags):
            strength = flags[flagger]
            own = float(self._visits[flagger]) - hit * float(after_node[flagger])
            standing = min(1.0, max(0.0, own)) * (1.0 - self.wall(flagger))
            share = self.parameters.flag_weight * strength * standing
            kept *= 1.0 - share
            parts.append((flagger, strength, share))
        total = min(self.parameters.max_flag_penalty, 1.0 - kept)
        return FlagPenalty(total=total, by_flagger=tuple(parts))

    def reach_probability(self, node: int) -> float:
        """Probability that a walk from the viewer ever arrives at `node`."""
        if node == self.viewer:
            return 1.0
        return self.reach(node).from_node(self.viewer)

    def score_node(self, node: int) -> float:
        """The displayed score of `node` (module doc): reach x wall x flags."""
        if node == self.viewer:
            return 1.0
        reached = self.reach_probability(node)
        if reached == 0.0:
            return 0.0
        factor = (1.0 - self.wall(node)) * (1.0 - self.penalty(node, reached=reached).total)
        return min(1.0, max(0.0, reached * factor))

    def score(self, identity: IdentityId) -> float:
        """The displayed score of `identity`; 0 for an identity nobody mentioned."""
        node = self._index.get(identity)
        return 0.0 if node is None else self.score_node(node)

    def reach_all(self) -> FloatArray:
        """Reach probability of every node at once (one sparse LU; for small graphs).

        Uses Y_x[s] / Y_x[x] = V_s[x] / F[x, x], with the diagonal of
        F = (I - M)^-1 taken from a sparse LU factorisation. Cost grows with
        the LU fill-in: meant for communities of thousands, not millions.
        """
        n = len(self._identities)
        system = (sp.identity(n, format="csc") - self.matrix()).tocsc()
        lu = sla.splu(system)
        diagonal = np.empty(n)
        block = 512
        for start in range(0, n, block):
            stop = min(n, start + block)
            rhs = np.zeros((n, stop - start))
            rhs[np.arange(start, stop), np.arange(stop - start)] = 1.0
            solved = lu.solve(rhs)
            diagonal[start:stop] = solved[np.arange(start, stop), np.arange(stop - start)]
        exact_visits = lu.solve(np.eye(n, 1, -self.viewer).ravel(), trans="T")
        result: FloatArray = np.clip(exact_visits / diagonal, 0.0, 1.0)
        result[self.viewer] = 1.0
        return result

    def scores_all(self) -> FloatArray:
        """Displayed score of every node (see `reach_all` for the cost)."""
        reached = self.reach_all()
        result = reached * (1.0 - self._walls)
        for node in self._distrust:
            if node != self.viewer and result[node] > 0.0 and self.flags_on(node):
                penalty = self.penalty(node, reached=float(reached[node]))
                result[node] *= 1.0 - penalty.total
        result[self.viewer] = 1.0
        return result

    # -- incremental updates ----------------------------------------------------------

    def set_weight(self, issuer: IdentityId, subject: IdentityId, weight: float) -> UpdateReport:
        """Apply one changed statement: issuer's signed weight about subject (0: none).

        Raises:
            LocalProtocolError: weight outside [-1, 1] or a statement about oneself.
        """
        if not -1.0 <= weight <= 1.0:
            raise LocalProtocolError("weight must lie in [-1, 1]")
        if issuer == subject:
            raise LocalProtocolError("a statement about oneself is not an edge")
        u, v = self._intern(issuer), self._intern(subject)
        changed = [u]
        wall_changes = u == self.viewer and (weight < 0.0 or self._walls[v] > 0.0)
        if wall_changes:
            changed.append(v)
        old_rows = {node: self.transition_row(node) for node in changed}
        self._set_positive(u, v, max(weight, 0.0))
        self._set_distrust(u, v, max(-weight, 0.0))
        self._matrix = None
        self._reach_cache.clear()
        self._from_cache.clear()
        self.updates_since_recompute += 1
        queue: deque[int] = deque()
        for node, (old_cols, old_probs) in old_rows.items():
            mass = float(self._visits[node])
            if mass == 0.0:
                continue
            new_cols, new_probs = self.transition_row(node)
            self._add_residual(old_cols, -mass * old_probs)
            self._add_residual(new_cols, mass * new_probs)
            queue.extend(np.concatenate([old_cols, new_cols]).tolist())
        return self._settle(queue)

    def _set_positive(self, u: int, v: int, weight: float) -> None:
        row = self._overlay.get(u)
        if row is None:
            cols, weights = self.out_edges(u)
            row = dict(zip(cols.tolist(), weights.tolist(), strict=True))
            self._overlay[u] = row
        if weight > 0.0:
            row[v] = weight
        else:
            row.pop(v, None)

    def _set_distrust(self, u: int, v: int, strength: float) -> None:
        issuers = self._distrust.setdefault(v, {})
        if strength > 0.0:
            issuers[u] = strength
        else:
            issuers.pop(u, None)
        if u == self.viewer:
            self._walls[v] = strength

    def _add_residual(self, cols: IndexArray, values: FloatArray) -> None:
        if cols.size == 0:
            return
        before = float(np.abs(self._residual[cols]).sum())
        self._residual[cols] += values  # a row's columns are distinct
        self._residual_l1 += float(np.abs(self._residual[cols]).sum()) - before

    def _settle(self, queue: deque[int]) -> UpdateReport:
        try:
            pushes = self._push(queue)
        except _BudgetExceededError:
            self.recompute()
            return UpdateReport(
                pushes=self.parameters.push_budget, recomputed=True, drift_bound=0.0
            )
        if self.drift_bound > self.parameters.drift_limit:
            self.recompute()
            return UpdateReport(pushes=pushes, recomputed=True, drift_bound=0.0)
        return UpdateReport(pushes=pushes, recomputed=False, drift_bound=self.drift_bound)

    def _push(self, queue: deque[int]) -> int:
        epsilon = self.parameters.push_epsilon
        residual, visits = self._residual, self._visits
        pushes = 0
        while queue:
            node = queue.popleft()
            amount = float(residual[node])
            if abs(amount) <= epsilon:
                continue
            pushes += 1
            if pushes > self.parameters.push_budget:
                raise _BudgetExceededError
            visits[node] += amount
            residual[node] = 0.0
            self._residual_l1 -= abs(amount)
            cols, probs = self.transition_row(node)
            if cols.size:
                self._add_residual(cols, amount * probs)
                hot = cols[np.abs(residual[cols]) > epsilon]
                queue.extend(hot.tolist())
        self._residual_l1 = max(self._residual_l1, 0.0)
        return pushes

    def edges(self) -> Iterable[tuple[int, int, float]]:
        """Every current positive edge (node numbers), for rebuilds and tests."""
        for node in range(len(self._identities)):
            cols, weights = self.out_edges(node)
            yield from zip([node] * cols.size, cols.tolist(), weights.tolist(), strict=True)
