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
u of M to M' keeps that true with r += p[u] (M'[u] - M[u]); pushing residuals
above `push_epsilon` to their successors makes them small again. Rows of
(I - M)^-1 sum to at most 1/restart, so |V_s - p|_1 <= |r|_1 / restart: that
drift bound comes with each update, and an exact solve is due when it passes
`drift_limit`, every `recompute_every` updates (the schedule), or when the
update moves more mass than `push_budget` pushes could settle (an edge of
the viewer or of a close contact: a full solve is cheaper then). A due solve
is run by the next read of the visits, not by the update (which stays
O(row): 0.1 ms against ~0.8 s of CPU for the solve at ten million arcs), so
updates in a row before a question cost one solve, not one each; updates
while one is due push nothing. Only
the visit vector (ranking, flaggers' standing, rating weights) drifts:
displayed scores always come from an exact reverse solve on the current
matrix. `TrustEngine.recompute()` rebuilds every walk from scratch.

**Reading the visits.** Pushes leave up to `push_epsilon` on every node of
an update's frontier, so the bound grows by ~1e-6 an update at a million
arcs (1e-4 after 450 updates), while an update must stay local (median
<= 1 ms). So the residual is settled when the visits are read, not when
they change: `visits()` first runs whole-graph sweeps p += r, r <- r M
(exact: V = p + r + r M (I - M)^-1, and |r M|_1 <= (1 - restart) |r|_1)
until the bound is a tenth of `read_drift_limit` (1e-6), or solves
afresh if more than `_MAX_SWEEPS` sweeps would be needed. Updates in a row
cost one read's sweeps, not one each.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from node.trust.graph import FloatArray, IndexArray
from node.trust.walk_solve import (
    DENSE_LIMIT,
    FlagPenalty,
    Reach,
    UpdateReport,
    WalkParameters,
    WalkSolver,
)
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityId

__all__ = ["DENSE_LIMIT", "FlagPenalty", "RandomWalk", "Reach", "UpdateReport", "WalkParameters"]


class _BudgetExceededError(Exception):
    """A push ran past its budget; the caller recomputes exactly instead."""


class RandomWalk(WalkSolver):
    """The walk metric from one viewer over one context's graph, kept up to date.

    The questions (visits, reach, scores) are answered by `WalkSolver`
    (`node.trust.walk_solve`); this class applies changed statements
    incrementally ("Incremental updates" in the module doc).
    """

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
        if u == self.viewer and (weight < 0.0 or self.wall(v) > 0.0):
            changed.append(v)
        old_rows = {node: self.transition_row(node) for node in changed}
        self._transitions.set_weight(u, v, max(weight, 0.0))
        self._set_distrust(u, v, max(-weight, 0.0))
        self._reach_cache.clear()
        self._from_cache.clear()
        self.updates_since_recompute += 1
        if self._solve_due:
            # An earlier update left an exact solve to the next read: it will
            # run on the matrix as it is then, so there is nothing to push.
            return UpdateReport(pushes=0, recomputed=False, drift_bound=0.0)
        moved = sum(float(self._visits[node]) for node in old_rows) * 2.0
        if moved > self.parameters.push_budget * self.parameters.push_epsilon:
            # So much mass moves (an edge next to the viewer) that pushing would
            # run past the budget: an exact solve instead, at the next read.
            return self._solve_later(pushes=0)
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

    def _set_distrust(self, u: int, v: int, strength: float) -> None:
        issuers = self._distrust.setdefault(v, {})
        if strength > 0.0:
            issuers[u] = strength
        else:
            issuers.pop(u, None)
        if u == self.viewer and self.wall(v) != strength:
            self._transitions.set_wall(v, strength)

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
            return self._solve_later(pushes=self.parameters.push_budget)
        scheduled = self.updates_since_recompute >= self.parameters.recompute_every
        if scheduled or self.drift_bound > self.parameters.drift_limit:
            return self._solve_later(pushes=pushes)
        return UpdateReport(pushes=pushes, recomputed=False, drift_bound=self.drift_bound)

    def _solve_later(self, *, pushes: int) -> UpdateReport:
        """Leave an exact solve to the next read of the visits (`WalkSolver.visits`).

        The update itself stays O(row): the solve (hundreds of milliseconds at
        ten million arcs) is paid once by the next question that needs the
        visits, however many updates come before it. Nothing reads stale
        visits meanwhile: every reader goes through `visits()`, and displayed
        scores come from reverse solves on the current matrix anyway.
        """
        self._solve_due = True
        self.updates_since_recompute = 0
        return UpdateReport(pushes=pushes, recomputed=True, drift_bound=0.0)

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
