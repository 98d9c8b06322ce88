"""The yes/no answers of the trust engine: who is accepted, which claims hold.

`Decisions` is the part of `TrustEngine` that turns the score table into
decisions (the thresholds of `DecisionParameters`, or capacity flow with
`decisions="flow"`); `TrustEngine` owns the incremental state it reads
(slot heads, walks, the score table). Kept apart so that each is read on its
own: the engine is about keeping answers exact as attestations arrive, this
is about what a yes means.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from node.trust.answers import ClaimDecision, DecisionParameters
from node.trust.consensus import Consensus
from node.trust.flow import (
    FlowParameters,
    IndependentPaths,
    accepted_members,
    independent_paths,
)
from node.trust.graph import FloatArray
from node.trust.introducer import IntroducerParameters, Validity, introducer_validity
from node.trust.support import Support
from node.trust.walk import RandomWalk
from protocol.attestation import Attestation
from protocol.identity import IdentityId
from protocol.statement import GENERAL_CONTEXT, Certify, SlotId
from protocol.supersession import is_current

__all__ = ["Decisions", "Scored"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Scored:
    """One context's scores and everything derived from them, until the next change."""

    values: FloatArray
    support: Support
    median: float
    spread: float  # (q75 - median) / median over the support: `DecisionParameters`
    consensus: Consensus | None
    standing: dict[tuple[float, float | None], frozenset[int]] = dataclasses.field(
        default_factory=dict
    )
    # Members whose seeds' median rank is >= the fraction (key) of their score.
    broad: dict[float, frozenset[int]] = dataclasses.field(default_factory=dict)
    # Members whose seeds' median rank is >= the fraction (key) of the support's median.
    anchored: dict[float, frozenset[int]] = dataclasses.field(default_factory=dict)


def seed_median(found: Consensus) -> FloatArray:
    """Every member's median rank over the consensus seeds (the viewer's own part
    left out), with the same walls and flags as its score.

    The score is the seeds' *mean* rank (`node.trust.consensus`); a farm
    member ranks high only from the few seeds next to its attack edges, and
    those lift a mean but not a median.
    """
    ranks = found.ranks[1:] if found.ranks.shape[0] > 1 else found.ranks
    factor = np.divide(
        found.scores, found.base, out=np.zeros_like(found.scores), where=found.base > 0.0
    )
    return np.asarray(np.median(ranks, axis=0) * factor, dtype=np.float64)


def _anchored_chains(
    walk: RandomWalk, nodes: list[int], anchors: list[int], independent: int,
    allowed: frozenset[int],
) -> IndependentPaths | None:  # fmt: skip
    """`independent` vertex-disjoint chains to distinct certifiers of `nodes`,
    one of them ending at an anchor, or None.

    The sets of certifiers that disjoint chains can reach together form a
    matroid (a gammoid), so a reachable anchor extends greedily to a full set
    whenever one exists: add certifiers one at a time, keeping each that still
    links. At most one max-flow per certifier, and only when this route is asked.
    """
    for anchor in anchors:
        chosen = [anchor]
        found = independent_paths(walk, chosen, min_weight=0.0, allowed=allowed)
        if found.count < 1:
            continue
        for other in nodes:
            if len(chosen) >= independent:
                break
            if other in chosen:
                continue
            trial = independent_paths(walk, [*chosen, other], min_weight=0.0, allowed=allowed)
            if trial.count == len(chosen) + 1:
                chosen, found = [*chosen, other], trial
        if found.count >= independent:
            return found
        return None  # the matroid's rank is the same from any anchor
    return None


class Decisions:
    """`accepted`, `validity`, `certifiers`, `claim`: the engine's yes/no answers.

    A base of `TrustEngine`, which provides the state and the three methods
    below (declared here so that each half type-checks on its own).
    """

    viewer: IdentityId
    now_ms: int
    decisions: str
    decision_parameters: DecisionParameters
    flow_parameters: FlowParameters
    introducer_parameters: IntroducerParameters
    _heads: dict[SlotId, Attestation]
    _certify_slots: dict[tuple[IdentityId, str], set[SlotId]]

    def walk(self, context: str = GENERAL_CONTEXT) -> RandomWalk:
        """The viewer's walk in `context` (`TrustEngine.walk`)."""
        raise NotImplementedError

    def member(self, key: IdentityId) -> IdentityId:
        """The member `key` speaks for (`TrustEngine.member`)."""
        raise NotImplementedError

    def _scored(self, context: str) -> Scored:
        raise NotImplementedError

    def _standing(self, context: str, floor: float, width: float | None) -> frozenset[int]:
        """Node numbers scoring at least the threshold `DecisionParameters.threshold`
        (and the viewer); with the walk alone, the support's members."""
        scored = self._scored(context)
        cached = scored.standing.get((floor, width))
        if cached is None:
            viewer = self.walk(context).viewer
            if scored.consensus is None or scored.consensus.seeds == (viewer,):
                # The walk alone (a small support, or `score_method="walk"`): its
                # scores fall with distance, so a fraction of the median would cut
                # far members; standing is the support itself.
                cached = scored.support.members | {viewer}
            else:
                threshold = self.decision_parameters.threshold(
                    scored.median, scored.spread, floor=floor, width=width
                )
                chosen = np.flatnonzero((scored.values >= threshold) & (scored.values > 0.0))
                cached = frozenset(int(i) for i in chosen) | {viewer}
            scored.standing[(floor, width)] = cached
        return cached

    def _broad(self, context: str, fraction: float) -> frozenset[int]:
        """Node numbers whose seeds' median rank (`seed_median`) is at least
        `fraction` x their score; with the walk alone (no seeds), everyone reached."""
        scored = self._scored(context)
        cached = scored.broad.get(fraction)
        if cached is None:
            found = scored.consensus
            viewer = self.walk(context).viewer
            if found is None or found.seeds == (viewer,) or fraction <= 0.0:
                chosen = np.flatnonzero(scored.values > 0.0)
            else:
                chosen = np.flatnonzero(seed_median(found) >= fraction * scored.values)
            cached = frozenset(int(i) for i in chosen) | {viewer}
            scored.broad[fraction] = cached
        return cached

    def _anchored(self, context: str, fraction: float) -> frozenset[int]:
        """Node numbers whose seeds' median rank is at least `fraction` x the
        support's median score (`claim`'s anchors); with the walk alone, none."""
        scored = self._scored(context)
        cached = scored.anchored.get(fraction)
        if cached is None:
            found = scored.consensus
            if found is None or found.seeds == (self.walk(context).viewer,):
                cached = frozenset()
            else:
                medians = seed_median(found)
                chosen = np.flatnonzero((medians >= fraction * scored.median) & (medians > 0.0))
                cached = frozenset(int(i) for i in chosen)
            scored.anchored[fraction] = cached
        return cached

    # -- flow, introducers, claims --------------------------------------------------

    def accepted(self, context: str = GENERAL_CONTEXT) -> frozenset[IdentityId]:
        """Members the viewer accepts (the viewer included).

        By default, those scoring at least the viewer's accept threshold,
        median x max(0.45, 1 - 2.7 u) over its support (`DecisionParameters`:
        `accept`, `accept_spread`); with `decisions="flow"`, by
        capacity flow from the viewer (Advogato, the rule before issue 22).
        """
        walk = self.walk(context)
        if self.decisions == "support":
            parameters = self.decision_parameters
            standing = self._standing(context, parameters.accept, parameters.accept_spread)
            return frozenset(walk.identities[i] for i in standing)
        acceptance = accepted_members(walk, self.flow_parameters)
        return frozenset(walk.identities[i] for i in acceptance.accepted)

    def validity(self, context: str = GENERAL_CONTEXT) -> Validity:
        """OpenPGP-style introducer validity (node numbers of `walk(context)`)."""
        return introducer_validity(self.walk(context), self.introducer_parameters)

    def certifiers(self, subject: IdentityId, claim: str) -> list[IdentityId]:
        """Issuers of the current certifications of `claim` about `subject`."""
        subject = self.member(subject)
        heads = (self._heads[slot_id] for slot_id in self._certify_slots.get((subject, claim), ()))
        return sorted(
            h.issuer
            for h in heads
            if is_current(h, now_ms=self.now_ms)
            and isinstance(s := h.statement, Certify) and s.subject == subject and s.claim == claim
        )  # fmt: skip

    def claim(
        self, subject: IdentityId, claim: str, *, independent: int = 2,
        context: str = GENERAL_CONTEXT,
    ) -> ClaimDecision:  # fmt: skip
        """Accept `claim` about `subject` if the viewer certified it, or if
        vertex-disjoint vouch chains lead from the viewer to `independent`
        distinct certifiers through members (certifiers included) scoring at
        least `decision_parameters.certifier` x the support's median, and the
        subject stands (`DecisionParameters`), on one of two routes:

        * on the line: the subject scores at least median x max(0.45, 1 -
          3.25 u) (`claim`, `claim_spread`) and its median rank over the
          consensus seeds is at least `claim_seeds` (0.5) x its score;
        * backed: the subject scores at least `claim_backed` (0.2) x median
          and the `independent` chains reach certifiers who each score at
          least `claim_backers` (0.9) x median;
        * anchored: as backed, but only one of the chains need reach such a
          certifier, the anchor, if its seeds' median is at least
          `claim_anchor` (0.8) x median; the others reach any certifier in
          the gate.

        Evidence arriving through one member counts once.

        Why the subject too: certifying costs a farm nothing, so a farm whose
        best-placed identities are supported could certify all its members;
        requiring the subject's own standing bounds the farm's accepted claims
        by its members in standing. Why the seeds' median: under a targeted
        attack the farm's best members score like the honest bottom 5-10 %
        (their score alone let 1.1-2.6 farm claims per attack edge through),
        lifted by the few seeds next to the attack edges. Why the backed route:
        the median also drops honest members of far blocks, whom few seeds
        rank high either, and the score line rejected up to 10 % of genuine
        claims on clustered and hub-heavy shapes; their certifiers, street-mates
        in the honest bulk, tell them apart from a farm, whose certifiers are
        its own best-placed identities
        (`simulations/results/community-holdout-summary-2026-12-02b.md`).
        Why the anchor: the genuine claims the backed route still missed had
        one certifier in the honest bulk and one weaker street-mate; a farm's
        entries reach the bulk's score only through the seeds next to their
        attack edges, not its seeds' median (at most 0.67 x median in the
        study's tuning cells;
        `simulations/results/community-holdout-summary-2026-12-02c.md`).
        With `decisions="flow"` (the rule before issue 22) certifiers must be
        flow-accepted instead and the subject is not checked.
        """
        subject = self.member(subject)
        walk = self.walk(context)
        certifiers = self.certifiers(subject, claim)
        nodes = [n for c in certifiers if (n := walk.node(c)) is not None]
        if self.decisions == "support":
            parameters = self.decision_parameters
            allowed = self._standing(context, parameters.certifier, None)
            # Chains through members in standing, at any vouch weight: the score
            # already says how much the viewer stands behind each of them.
            result = independent_paths(walk, nodes, min_weight=0.0, allowed=allowed)
            subject_node = walk.node(subject)
            line = self._standing(context, parameters.claim, parameters.claim_spread)
            standing = subject_node is not None and (
                subject_node in line
                and subject_node in self._broad(context, parameters.claim_seeds)
            )
            backers = parameters.claim_backers
            if (
                not standing and backers is not None and subject_node is not None
                and result.count >= independent
                and subject_node in self._standing(context, parameters.claim_backed, None)
            ):  # fmt: skip
                strong = self._standing(context, backers, None)
                backed = independent_paths(
                    walk, [n for n in nodes if n in strong], min_weight=0.0, allowed=allowed
                )
                if backed.count >= independent:
                    standing, result = True, backed
                elif parameters.claim_anchor is not None:
                    anchors = strong & self._anchored(context, parameters.claim_anchor)
                    anchored = _anchored_chains(
                        walk, nodes, [n for n in nodes if n in anchors], independent, allowed
                    )
                    if anchored is not None:
                        standing, result = True, anchored
        else:
            standing = True
            allowed = accepted_members(walk, self.flow_parameters).accepted | {walk.viewer}
            result = independent_paths(
                walk, nodes, min_weight=self.flow_parameters.min_weight, allowed=allowed
            )
        own = self.viewer in certifiers
        paths = tuple(tuple(walk.identities[n] for n in p) for p in result.paths)
        return ClaimDecision(
            subject=subject,
            claim=claim,
            accepted=own or (standing and result.count >= independent),
            required=independent,
            independent=result.count,
            certifiers=tuple(certifiers),
            paths=paths,
            own_certification=own,
        )
