"""The question-answering half of `TrustEngine`: walks, scores, rankings, explanations.

`Scoring` turns the engine's current slot heads into answers: it builds each
context's `RandomWalk` on first use, keeps the score table of every member
(the consensus of `node.trust.consensus`, or the walk alone) until the next
change, and explains one score. `TrustEngine` (`node.trust.engine`) owns the
bookkeeping that keeps those answers exact as attestations arrive (slot
heads, reached identities, expiries, the incremental updates of the walks);
`Decisions` (`node.trust.decisions`) turns the score table into yes/no
answers. Kept apart so that each is read on its own: this module is about
what a score is and why, the engine about keeping it current.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from node.trust.answers import TrustExplanation, corroborated, named_explanation
from node.trust.consensus import (
    Consensus,
    ConsensusParameters,
    Seeded,
    score_of,
    seeded,
    table,
)
from node.trust.decisions import Decisions, Scored
from node.trust.explain import WhyNot, explain_node
from node.trust.graph import Edge, TrustGraph
from node.trust.identity import IdentityLayer, resolve_subject
from node.trust.key_history import key_history
from node.trust.rating import RatingSummary, rated_contexts, rating_of
from node.trust.support import score_support
from node.trust.walk import RandomWalk, WalkParameters
from protocol.attestation import Attestation
from protocol.identity import IdentityId
from protocol.statement import GENERAL_CONTEXT, SlotId, Subject

__all__ = ["Scoring"]


class Scoring(Decisions):
    """`walk`, `score`, `scores`, `ranking`, `support`, `explain`, `rating`.

    A base of `TrustEngine`, which provides the state and the methods below
    that raise `NotImplementedError` (declared here so that each half
    type-checks on its own, as in `Decisions`).
    """

    score_method: str
    consensus_parameters: ConsensusParameters
    walk_parameters: WalkParameters
    fallback: float
    _identities: IdentityLayer
    _walks: dict[str, RandomWalk]
    # Per context: every member's score and the support, until the next change.
    _score_cache: dict[str, Scored]
    # Per context: the consensus's support, seeds and their vectors, until the next change.
    _seeded: dict[str, Seeded]
    # Per context: the last of those computed, kept across changes (corrected, not re-solved).
    _consensus: dict[str, Seeded]
    _heads: dict[SlotId, Attestation]

    def edges(self, *, reached_only: bool = False) -> list[Edge]:
        """The current trust statements (`TrustEngine.edges`)."""
        raise NotImplementedError

    def known(self, identity: IdentityId) -> bool:
        """Whether any trust statement names `identity` (`TrustEngine.known`)."""
        raise NotImplementedError

    def _current(self) -> Iterable[Attestation]:
        raise NotImplementedError

    def walk(self, context: str = GENERAL_CONTEXT) -> RandomWalk:
        """The (incrementally kept) walk of `context`, built on first use."""
        walk = self._walks.get(context)
        if walk is None:
            graph = TrustGraph.from_edges(
                self.edges(reached_only=True), context=context, identities=[self.viewer],
                fallback=self.fallback,
            )  # fmt: skip
            walk = RandomWalk(graph, self.viewer, self.walk_parameters)
            self._walks[context] = walk
        return walk

    def score(self, subject: IdentityId, context: str = GENERAL_CONTEXT) -> float:
        """How far the viewer should trust `subject` in `context`, in [0, 1].

        The consensus score by default (`node.trust.consensus`); with
        `score_method="walk"`, the viewer's walk alone (reach probability).
        """
        subject = self.member(subject)
        walk = self.walk(context)
        node = walk.node(subject)
        if node is None:
            return 0.0
        if self.score_method == "walk":
            return walk.score_node(node)
        if context not in self._score_cache:
            # One member's column of ranks, not the whole table (nor the
            # thresholds): `scores()[subject]` to the last bit, for a fraction
            # of its cost after an update.
            value = score_of(walk, self._seed(context), node)
            if value is not None:
                return value
        return float(self._scored(context).values[node])

    def scores(self, context: str = GENERAL_CONTEXT) -> dict[IdentityId, float]:
        """Every member's score in `context` at once (one batched solve, cached).

        Holds every identity the viewer's walk knows (reached, or merely
        vouched for by a reached member); members it never reaches score 0.
        Equal to `score(x)` for each x: `score` reads this table. `ranking`,
        the `GET /v1/scores` route and simulations use it. The table is
        rebuilt on the first call after any change. Up to 2 000 members it is
        read off a dense (I - M)^-1 kept by Woodbury updates: at 1 000 members
        and 19 000 arcs, ~250 ms of CPU for the first table, then ~10 ms for
        a table and ~3-5 ms for one `score` after a new vouch (no solve at
        all); above, a block iteration corrected by one solve for the changed
        row and the seeds that moved (`node.trust.consensus`, "After an
        update"; see `benchmarks.trust`).
        """
        walk = self.walk(context)
        values = self._scored(context).values
        return {identity: float(values[i]) for i, identity in enumerate(walk.identities)}

    def _scored(self, context: str) -> Scored:
        cached = self._score_cache.get(context)
        if cached is None:
            walk = self.walk(context)
            visits = np.asarray(walk.visits())
            found: Consensus | None = None
            if self.score_method == "consensus":
                found = table(walk, self._seed(context))
                values, support = found.scores, found.support
            else:
                values = walk.scores_all()
                support = score_support(
                    values, visits, walk.viewer, epsilon=self.consensus_parameters.epsilon
                )
            members = np.array(sorted(support.members), dtype=np.int64)
            median = float(np.median(values[members])) if members.size else 1.0
            upper = float(np.quantile(values[members], 0.75)) if members.size else 1.0
            spread = (upper - median) / median if median > 0.0 else 0.0
            cached = Scored(
                values=values, support=support, median=median, spread=spread, consensus=found
            )
            self._score_cache[context] = cached
        return cached

    def _seed(self, context: str) -> Seeded:
        """The consensus's support, seeds and vectors (`node.trust.consensus.seeded`)."""
        found = self._seeded.get(context)
        if found is None:
            found = seeded(
                self.walk(context), self.consensus_parameters,
                previous=self._consensus.get(context),
            )  # fmt: skip
            self._seeded[context] = self._consensus[context] = found
        return found

    def support(self, context: str = GENERAL_CONTEXT) -> frozenset[IdentityId]:
        """The viewer's support (`node.trust.support`): whose views corroborate scores."""
        walk = self.walk(context)
        return frozenset(walk.identities[i] for i in self._scored(context).support.members)

    def ranking(
        self, context: str = GENERAL_CONTEXT, *, limit: int = 20
    ) -> list[tuple[IdentityId, float]]:
        """The `limit` members with the highest scores (ties by identity), from `scores`."""
        walk = self.walk(context)
        values = self._scored(context).values
        order = sorted(
            (i for i in range(len(values)) if i != walk.viewer and values[i] > 0.0),
            key=lambda i: (-float(values[i]), walk.identities[i]),
        )
        return [(walk.identities[i], float(values[i])) for i in order[:limit]]

    def explain(
        self, subject: IdentityId, context: str = GENERAL_CONTEXT, *, top_paths: int = 5
    ) -> TrustExplanation:
        """Everything behind `score(subject, context)`."""
        explanation = self._explain(self.member(subject), context, top_paths=top_paths)
        keys = key_history(
            self._identities, self._heads, subject=explanation.subject,
            edges=explanation.edges(self.viewer), context=context,
        )  # fmt: skip
        return dataclasses.replace(explanation, keys=keys)

    def _explain(self, subject: IdentityId, context: str, *, top_paths: int) -> TrustExplanation:
        walk = self.walk(context)
        node = walk.node(subject)
        if node is None:
            # Not in the walk: mentioned only by identities the viewer does not reach
            # (no path), or by nobody at all.
            why_not = WhyNot.NO_PATH if self.known(subject) else WhyNot.UNKNOWN
            return TrustExplanation(
                subject=subject, context=context, score=0.0, reach=0.0, wall=0.0,
                flag_penalty=0.0, flags=(), first_hops=(), paths=(), path_coverage=0.0,
                why_not=why_not,
            )  # fmt: skip
        named = named_explanation(
            explain_node(walk, node, top_paths=top_paths), walk, subject, context
        )
        scored = self._scored(context)
        if scored.consensus is None or node == walk.viewer:
            return named
        return corroborated(named, scored.consensus, walk, node)

    def rating(
        self, subject: Subject, context: str = GENERAL_CONTEXT, *, max_hops: int = 3
    ) -> RatingSummary:
        """Trust-weighted average of the current ratings of `subject` in `context`.

        `counted` in the result holds node numbers of `walk(context)`.
        """
        subject = resolve_subject(self._identities, subject)
        return rating_of(self.walk(context), self._current(), subject, context, max_hops=max_hops)

    def rating_contexts(self, subject: Subject) -> list[str]:
        """The contexts `subject` has current ratings in, sorted (for "every context")."""
        return rated_contexts(self._current(), subject)
