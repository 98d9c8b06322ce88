"""The exact half of `RandomWalk`: the visit vector, the reverse solves, the scores.

`WalkSolver` answers every question of the walk metric (`node.trust.walk`,
whose module doc defines it) from the current transition matrix: the
viewer's visits (solved, or settled from a residual on read), reach
probabilities by reverse solve, flag penalties and displayed scores.
`RandomWalk` adds the incremental updates (a changed row, forward push,
the fallbacks to an exact solve). Kept apart so that each is read on its
own: this is what a score is, that is how the state stays current.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from node.trust.graph import FloatArray, IndexArray, TrustGraph
from node.trust.solve import solve_system
from node.trust.transitions import Transitions
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityId

_MAX_SWEEPS = 40
"""More sweeps than this to settle a residual (a factor 7 500): a fresh solve instead."""

DENSE_LIMIT = 5000
"""Largest graph for which `reach_all` inverts I - M densely."""

__all__ = ["DENSE_LIMIT", "FlagPenalty", "Reach", "UpdateReport", "WalkParameters", "WalkSolver"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WalkParameters:
    """Knobs of the walk metric; the defaults are the documented ones."""

    restart: float = 0.2
    tolerance: float = 1e-8
    reach_tolerance: float = 1e-6
    flag_weight: float = 0.2
    max_flag_penalty: float = 0.9
    push_epsilon: float = 1e-7
    push_budget: int = 3000
    drift_limit: float = 1e-3
    merge_rows: int = 2000
    recompute_every: int = 10_000  # incremental updates between scheduled exact solves
    # `visits()` settles the residual first when the drift bound exceeds this
    # (whole-graph sweeps, "Reading the visits" in the module doc).
    read_drift_limit: float = 1e-6

    def __post_init__(self) -> None:
        if not 0.0 < self.restart < 1.0:
            raise LocalProtocolError("restart must lie in (0, 1)")
        if not 0.0 <= self.flag_weight <= 1.0 or not 0.0 <= self.max_flag_penalty <= 1.0:
            raise LocalProtocolError("flag weights must lie in [0, 1]")
        if min(self.tolerance, self.push_epsilon, self.drift_limit, self.read_drift_limit) <= 0.0:
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


class WalkSolver:
    """The walk metric from one viewer over one context's graph, answered exactly
    from the current matrix (the base of `RandomWalk`, which keeps it up to date)."""

    def __init__(
        self,
        graph: TrustGraph,
        viewer: IdentityId,
        parameters: WalkParameters | None = None,
    ) -> None:
        self.parameters = parameters or WalkParameters()
        self._identities = list(graph.identities)
        self._index = dict(graph.index)
        self._distrust: dict[int, dict[int, float]] = {}  # subject -> issuer -> strength
        for (issuer, subject), strength in graph.distrust.items():
            self._distrust.setdefault(subject, {})[issuer] = strength
        walls = np.zeros(graph.size)
        viewer_node = self._index.get(viewer)
        if viewer_node is not None:
            for subject, issuers in self._distrust.items():
                walls[subject] = issuers.get(viewer_node, 0.0)
        self._transitions = Transitions(graph, restart=self.parameters.restart, walls=walls)
        self._visits = np.zeros(graph.size)
        self._residual = np.zeros(graph.size)
        self.viewer = self._intern(viewer)
        self._reach_cache: dict[int, Reach] = {}
        self._from_cache: dict[int, FloatArray] = {}
        self._residual_l1 = 0.0
        self.updates_since_recompute = 0
        # An update asked for an exact solve (`RandomWalk`): the next read of
        # the visits runs it, so updates in a row cost one solve, not one each.
        self._solve_due = False
        self.recompute()

    # -- identities ----------------------------------------------------------------

    @property
    def identities(self) -> list[IdentityId]:
        """Identities by node number (new ones are appended as they appear)."""
        return self._identities

    def node(self, identity: IdentityId) -> int | None:
        """The node number of `identity`, if it is in the graph."""
        return self._index.get(identity)

    def _intern(self, identity: IdentityId) -> int:
        node = self._index.get(identity)
        if node is None:
            node = self._transitions.grow()
            self._identities.append(identity)
            self._index[identity] = node
            self._visits = np.append(self._visits, 0.0)
            self._residual = np.append(self._residual, 0.0)
        return node

    # -- rows and matrix -------------------------------------------------------------

    def out_edges(self, node: int) -> tuple[IndexArray, FloatArray]:
        """Subjects and weights of `node`'s positive vouches, as they are now."""
        return self._transitions.out_edges(node)

    def transition_row(self, node: int) -> tuple[IndexArray, FloatArray]:
        """Where a walk at `node` goes next, with what probability (restart and wall in)."""
        return self._transitions.row(node)

    def wall(self, node: int) -> float:
        """Strength of the viewer's own distrust of `node` (0 if none)."""
        return float(self._transitions.walls[node])

    def walls(self) -> FloatArray:
        """The viewer's wall strength for every node (read-only view)."""
        view = self._transitions.walls.view()
        view.flags.writeable = False
        return view

    def flags_on(self, node: int) -> dict[int, float]:
        """Distrust of `node` by members other than the viewer: flagger -> strength."""
        return {i: s for i, s in self._distrust.get(node, {}).items() if i != self.viewer}

    def flagged(self) -> list[int]:
        """Nodes that members other than the viewer distrust, in order (see `flags_on`)."""
        return sorted(
            node for node, issuers in self._distrust.items()
            if any(issuer != self.viewer for issuer in issuers)
        )  # fmt: skip

    def matrix(self) -> sp.csr_matrix:
        """The current transition matrix M as one CSR matrix (cached until the next update)."""
        return self._transitions.matrix()

    def weight_matrix(self) -> sp.csr_matrix:
        """The current positive vouch weights (value/100) as a matrix, walls not applied."""
        return self._transitions.weight_matrix()

    # -- exact solves ---------------------------------------------------------------

    def recompute(self, *, warm: bool = True) -> None:
        """Solve the visits exactly from the current graph; residuals become zero.

        Folds the row overlay into a new base matrix first once it holds more
        than `merge_rows` rows (an O(arcs) copy, so not at every fallback).
        `warm` starts the solver from the current visits (a few iterations
        after a small change); the result meets the same tolerance either way.
        """
        if self._transitions.changed_rows > self.parameters.merge_rows:
            self._transitions.merge()
        n = len(self._identities)
        rhs = np.zeros(n)
        rhs[self.viewer] = 1.0
        previous = self._visits if warm and self._visits.shape == rhs.shape else None
        self._visits = solve_system(
            self._transitions.forward,
            rhs,
            tolerance=self.parameters.tolerance,
            matrix=lambda: self.matrix().T,
            guess=previous if previous is not None and previous.any() else None,
        )
        self._residual = np.zeros(n)
        self._residual_l1 = 0.0
        self.updates_since_recompute = 0
        self._solve_due = False

    def visits(self) -> FloatArray:
        """Expected visits of the viewer's walk to every node (read-only view),
        within `read_drift_limit` in L1 of the exact ones (module doc).

        Runs the exact solve an update left due, if any (`RandomWalk.set_weight`).
        """
        if self._solve_due:
            self.recompute()
        elif self.drift_bound > self.parameters.read_drift_limit:
            self._sweep()
        view = self._visits.view()
        view.flags.writeable = False
        return view

    def _sweep(self) -> None:
        """Settle the residual by whole-graph sweeps (module doc, "Reading the visits")."""
        restart = self.parameters.restart
        target = self.parameters.read_drift_limit * restart / 10.0
        residual = self._residual
        size = float(np.abs(residual).sum())
        needed = np.log(target / size) / np.log(1.0 - restart) if size > target else 0.0
        if needed > _MAX_SWEEPS:
            self.recompute()
            return
        while size > target:
            self._visits += residual
            residual = self._transitions.forward(residual)
            size = float(np.abs(residual).sum())
        self._residual, self._residual_l1 = np.array(residual, dtype=np.float64), size

    @property
    def drift_bound(self) -> float:
        """Upper bound on the L1 distance between `visits()` and the exact vector
        (0 while a solve is due: the next read runs it)."""
        if self._solve_due:
            return 0.0
        return self._residual_l1 / self.parameters.restart

    def reach(self, node: int) -> Reach:
        """The reverse solve for `node` (cached until the next update)."""
        cached = self._reach_cache.get(node)
        if cached is None:
            cached = Reach(target=node, visits_to_target=self._solve_unit(node, forward=False))
            self._reach_cache[node] = cached
        return cached

    def visits_from(self, node: int) -> FloatArray:
        """Expected visits of a walk started at `node` (cached until the next update)."""
        cached = self._from_cache.get(node)
        if cached is None:
            cached = self._solve_unit(node, forward=True)
            self._from_cache[node] = cached
        return cached

    def _solve_unit(self, node: int, *, forward: bool) -> FloatArray:
        """Visits from `node` (forward) or to `node` from everyone (reverse)."""
        rhs = np.zeros(len(self._identities))
        rhs[node] = 1.0
        return solve_system(
            self._transitions.forward if forward else self._transitions.reverse,
            rhs,
            tolerance=self.parameters.reach_tolerance,
            matrix=(lambda: self.matrix().T) if forward else self.matrix,
        )

    # -- scores ---------------------------------------------------------------------

    def penalty(self, node: int, *, reached: float | None = None) -> FlagPenalty:
        """The bounded penalty that other members' flags put on `node`."""
        flags = self.flags_on(node)
        if not flags or node == self.viewer:
            return FlagPenalty(total=0.0, by_flagger=())
        hit = self.reach_probability(node) if reached is None else reached
        after_node = self.visits_from(node)
        visits = self.visits()
        kept = 1.0
        parts: list[tuple[int, float, float]] = []
        for flagger in sorted(flags):
            strength = flags[flagger]
            own = float(visits[flagger]) - hit * float(after_node[flagger])
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
        # Summed over the first step (not read off Y[s] directly) so that the
        # first-hop split of `explain` adds up to exactly this number.
        visits_to_target = self.reach(node).visits_to_target
        own = float(visits_to_target[node])
        if own <= 0.0:
            return 0.0
        cols, probs = self.transition_row(self.viewer)
        return min(1.0, max(0.0, float(probs @ visits_to_target[cols]) / own))

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
        """Reach probability of every node at once.

        Uses reach(x) = V_s[x] / F[x, x], with F = (I - M)^-1. For up to
        `DENSE_LIMIT` members F's diagonal comes from one dense inverse
        (0.5 s at 2 000); above, from one reverse solve per member the walk
        visits (milliseconds each at 10 000 members), so prefer `score` for the
        few members a user looks at.
        """
        n = len(self._identities)
        if n <= DENSE_LIMIT:
            inverse = np.linalg.inv(np.eye(n) - self.matrix().toarray())
            diagonal = np.diag(inverse)
            result: FloatArray = np.clip(inverse[self.viewer] / diagonal, 0.0, 1.0)
        else:
            result = np.zeros(n)
            for node in np.flatnonzero(self.visits() > 0.0).tolist():
                result[node] = self.reach(node).from_node(self.viewer)
        result[self.viewer] = 1.0
        return result

    def scores_all(self) -> FloatArray:
        """Displayed score of every node (see `reach_all` for the cost)."""
        reached = self.reach_all()
        result = reached * (1.0 - self._transitions.walls)
        for node in self._distrust:
            if node != self.viewer and result[node] > 0.0 and self.flags_on(node):
                penalty = self.penalty(node, reached=float(reached[node]))
                result[node] *= 1.0 - penalty.total
        result[self.viewer] = 1.0
        return result
