"""`TrustEngine`: one viewer's trust answers over a set of verified attestations.

The engine is pure (no store, no I/O): feed it attestations (from the store's
change feed, a simulation or an app) and ask `score`, `explain`, `claim`,
`rating`, `accepted` or `validity`. It keeps each slot's head (SPEC §5) so
that the answers depend only on the set of attestations, never on their order,
and keeps one `RandomWalk` per context it was asked about, updated
incrementally as attestations arrive. `recompute()` rebuilds everything
exactly (the scheduled exact recompute of the incremental scheme).

Scores are the consensus of `node.trust.consensus` (the viewer's walk
corroborated by its support; the walk alone below 64 supported members),
computed for every member at once by `scores()` and cached until the next
change (then corrected, not solved again: `node.trust.consensus`); `score`,
`ranking`, `accepted` and `claim` read that table. Yes/no thresholds are
derived per viewer from its support's score distribution: the median, less
a multiple of the upper quartile's distance from it (`DecisionParameters`).
`score_method="walk"` and `decisions="flow"` give the rules before issue 22.

The questions live in the engine's bases: `node.trust.scoring` (walks,
scores, rankings, explanations) and `node.trust.decisions` (yes/no); this
module keeps the state they read exact as attestations arrive.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from node.trust.answers import ClaimDecision, DecisionParameters, TrustExplanation
from node.trust.consensus import ConsensusParameters, Seeded
from node.trust.decisions import Scored
from node.trust.flow import FlowParameters
from node.trust.graph import GENERAL_FALLBACK, Edge
from node.trust.identity import IdentityLayer
from node.trust.introducer import IntroducerParameters
from node.trust.scoring import Scoring
from node.trust.walk import RandomWalk, WalkParameters
from protocol.attestation import Attestation
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityId
from protocol.statement import GENERAL_CONTEXT, Kind, Slot, SlotId, Subject, Trust
from protocol.supersession import is_current, order_key

__all__ = [
    "DECISIONS",
    "SCORES",
    "ClaimDecision",
    "DecisionParameters",
    "TrustEngine",
    "TrustExplanation",
]

SCORES = ("consensus", "walk")
"""The default score: `consensus` (the viewer's walk corroborated by its
support, `node.trust.consensus`), or `walk` (the viewer's walk alone: reach
probability, the default before issue 22)."""

DECISIONS = ("support", "flow")
"""How yes/no answers are made: `support` (the default, `node.trust.support`)
or `flow` (Advogato capacity flow from the viewer, the rule before issue 22)."""


def _identity(subject: Subject) -> IdentityId:
    """A trust slot's subject is always an identity (SPEC §3.2)."""
    assert isinstance(subject, bytes)
    return IdentityId(subject)


class TrustEngine(Scoring):
    """Trust from `viewer`'s point of view; see the module doc.

    This class keeps the state exact as attestations arrive (slot heads,
    reached identities, expiries, the walks' incremental updates); the
    questions are answered by its bases, `Scoring` (`node.trust.scoring`:
    scores, rankings, explanations) and `Decisions` (yes/no answers).
    """

    def __init__(
        self,
        viewer: IdentityId,
        *,
        now_ms: int,
        attestations: Iterable[Attestation] = (),
        walk_parameters: WalkParameters | None = None,
        flow_parameters: FlowParameters | None = None,
        introducer_parameters: IntroducerParameters | None = None,
        fallback: float = GENERAL_FALLBACK,
        score_method: str = "consensus",
        consensus_parameters: ConsensusParameters | None = None,
        decisions: str = "support",
        decision_parameters: DecisionParameters | None = None,
    ) -> None:
        if decisions not in DECISIONS:
            raise LocalProtocolError(f"decisions must be one of {DECISIONS}")
        if score_method not in SCORES:
            raise LocalProtocolError(f"score_method must be one of {SCORES}")
        # The key we answer for, and the member it speaks for (`viewer`): a
        # device's engine sees through its root's eyes (SPEC §16).
        self.key = viewer
        self.viewer = viewer
        self._identities = IdentityLayer()
        self._identities.advance(now_ms)  # recoveries (SPEC §18) are read at the clock
        self.score_method = score_method
        self.consensus_parameters = consensus_parameters or ConsensusParameters()
        self.decisions = decisions
        self.decision_parameters = decision_parameters or DecisionParameters()
        # Per context: every member's score and the support, until the next change.
        self._score_cache: dict[str, Scored] = {}
        # Per context: the consensus's support, seeds and their vectors, until
        # the next change (one member's `score` reads these, not the table).
        self._seeded: dict[str, Seeded] = {}
        # Per context: the last of those computed, kept across changes so that
        # the next one corrects its seeds' vectors instead of solving them again.
        self._consensus: dict[str, Seeded] = {}
        self.now_ms = now_ms
        self.walk_parameters = walk_parameters or WalkParameters()
        self.flow_parameters = flow_parameters or FlowParameters()
        self.introducer_parameters = introducer_parameters or IntroducerParameters()
        self.fallback = fallback
        self._heads: dict[SlotId, Attestation] = {}
        self._walks: dict[str, RandomWalk] = {}
        # Identities a chain of positive vouches (any context) reaches from the
        # viewer, and every identity's trust heads. An edge whose issuer is not
        # reached is *dormant*: no walk of this viewer can pass through it, so
        # it is kept out of the walks until its issuer is reached (then
        # replayed). A farm of identities that nobody reached vouches for
        # costs a dictionary entry, not a node in every solve. Reached is
        # never undone (a superset keeps every answer exact).
        self._reached: set[IdentityId] = {viewer}
        self._trust_slots: dict[IdentityId, set[SlotId]] = {}
        # Certification slots by (subject, claim): `certifiers` reads these, not every head.
        self._certify_slots: dict[tuple[IdentityId, str], set[SlotId]] = {}
        # (expiry, slot) of every trust head that expires, soonest first: `advance`
        # pops what expired instead of reading every head on every question.
        # An entry whose head was superseded since is skipped when popped.
        self._expiries: list[tuple[int, SlotId]] = []
        self.add(attestations)

    # -- input ------------------------------------------------------------------------

    def add(self, attestations: Iterable[Attestation]) -> int:
        """Take verified attestations in any order; returns how many changed a slot head."""
        changed = 0
        identities = self._identities
        # While no key is bound or rotated, a vouch maps to itself: skip the call
        # (the common case; issue 26's cost target). Anything else goes through
        # the layer, which may switch mapping on.
        mapping = identities.active
        for signed in attestations:
            if mapping or type(signed.envelope.body.statement) is not Trust:
                attestation = identities.view(signed)  # keys to members (node.trust.identity)
                mapping = identities.active
                if attestation is None:
                    continue  # refused, or an identity statement (`identities.remapped` may be set)
            else:
                attestation = signed
            slot_id = attestation.slot.id
            head = self._heads.get(slot_id)
            if head is not None and order_key(attestation) <= order_key(head):
                identities.displaced(attestation)
                continue
            if head is not None:
                identities.displaced(head)
            self._heads[slot_id] = attestation
            changed += 1
            self._forget()
            if attestation.slot.kind is Kind.CERTIFY:
                key = (_identity(attestation.slot.subject), attestation.slot.scope)
                self._certify_slots.setdefault(key, set()).add(slot_id)
            if attestation.slot.kind is Kind.TRUST:
                if attestation.expires_at_ms is not None:
                    heapq.heappush(self._expiries, (attestation.expires_at_ms, slot_id))
                self._trust_slots.setdefault(attestation.issuer, set()).add(slot_id)
                self._edge_changed(attestation.issuer, _identity(attestation.slot.subject))
        if identities.remapped:  # once per batch, however many bindings it brought
            changed += self._remap()
        return changed

    def _remap(self) -> int:
        """A device binding changed who speaks for whom: rebuild from the raw attestations."""
        identities = self._identities
        identities.remapped = False
        raw = [identities.raw(head) for head in self._heads.values()]
        raw.extend(identities.take_kept())
        self.viewer = identities.member(self.key)
        self._heads.clear()
        self._walks.clear()
        self._forget()
        self._reached = {self.viewer}
        self._trust_slots.clear()
        self._certify_slots.clear()
        self._expiries.clear()
        return 1 + self.add(raw)

    def member(self, key: IdentityId) -> IdentityId:
        """The member `key` speaks for: its root if it is an authorised device (SPEC §16)."""
        return self._identities.member(key)

    def devices(self, root: IdentityId) -> list[tuple[IdentityId, int, int | None]]:
        """`root`'s devices: (device, granted at, cut-off or None)."""
        return self._identities.book.devices.devices(root)

    def advance(self, now_ms: int) -> None:
        """Move the engine's clock: attestations that expire by `now_ms` stop counting."""
        before, self.now_ms = self.now_ms, now_ms
        self._identities.advance(now_ms)
        if self._identities.remapped:  # a recovery took effect (SPEC §18.3)
            self._remap()
        # The score table depends on the walks alone, so it stays unless an edge
        # expired: every question moves the clock, and clearing it each time made
        # every score, explain and name lookup solve all scores again. Expired
        # edges come off a heap: O(expired x log heads), not O(heads), a question.
        if now_ms < before:  # the clock went back (rare): what expired counts again
            self._expiries = [
                (h.expires_at_ms, slot_id) for slot_id, h in self._heads.items()
                if h.slot.kind is Kind.TRUST and h.expires_at_ms is not None
            ]  # fmt: skip
            heapq.heapify(self._expiries)
            for expires, slot_id in self._expiries:
                if now_ms < expires <= before:
                    back = self._heads[slot_id]
                    self._forget()
                    self._edge_changed(back.issuer, _identity(back.slot.subject))
        expiries = self._expiries
        while expiries and expiries[0][0] <= now_ms:
            expires, slot_id = heapq.heappop(expiries)
            head = self._heads.get(slot_id)
            if head is None or head.expires_at_ms != expires or not before < expires:
                continue  # superseded since it was pushed, or expired before `before`
            self._forget()
            self._edge_changed(head.issuer, _identity(head.slot.subject))

    def recompute(self) -> None:
        """Drop the incremental state: every walk is rebuilt exactly on next use."""
        self._walks.clear()
        self._forget()
        self._consensus.clear()

    def _forget(self) -> None:
        """Something changed: the score tables (and what they were read off) are stale."""
        self._score_cache.clear()
        self._seeded.clear()

    def _edge_changed(self, issuer: IdentityId, subject: IdentityId) -> None:
        if issuer == subject:
            return  # a statement about oneself is valid but never an edge (graph.py drops it)
        if issuer not in self._reached:
            return  # dormant until a chain from the viewer reaches the issuer
        for context, walk in self._walks.items():
            walk.set_weight(issuer, subject, self._weight(issuer, subject, context))
        if subject not in self._reached and self._vouches(issuer, subject):
            self._reach_from(subject)

    def _vouches(self, issuer: IdentityId, subject: IdentityId) -> bool:
        """A current positive trust of `issuer` in `subject`, in any context."""
        heads = (self._heads[slot_id] for slot_id in self._trust_slots.get(issuer, ()))
        return any(
            isinstance(s := h.statement, Trust) and s.subject == subject and s.value > 0
            and is_current(h, now_ms=self.now_ms)
            for h in heads
        )  # fmt: skip

    def _reach_from(self, start: IdentityId) -> None:
        """`start` is now reached: wake its dormant edges, and on from there."""
        pending = [start]
        while pending:
            node = pending.pop()
            if node in self._reached:
                continue
            self._reached.add(node)
            subjects = {
                _identity(self._heads[slot_id].slot.subject)
                for slot_id in self._trust_slots.get(node, ())
            }
            for subject in sorted(subjects - {node}):
                for context, walk in self._walks.items():
                    walk.set_weight(node, subject, self._weight(node, subject, context))
                if subject not in self._reached and self._vouches(node, subject):
                    pending.append(subject)

    def known(self, identity: IdentityId) -> bool:
        """Whether any current or past trust statement names `identity`."""
        if identity in self._trust_slots or identity in self._reached:
            return True
        return any(
            self._heads[slot_id].slot.subject == identity
            for slots in self._trust_slots.values()
            for slot_id in slots
        )

    def _trust_value(self, issuer: IdentityId, subject: IdentityId, context: str) -> int | None:
        slot = Slot(issuer=issuer, kind=Kind.TRUST, subject=subject, scope=context)
        head = self._heads.get(slot.id)
        if head is None or not is_current(head, now_ms=self.now_ms):
            return None
        statement = head.statement
        return statement.value if isinstance(statement, Trust) else None

    def _weight(self, issuer: IdentityId, subject: IdentityId, context: str) -> float:
        value = self._trust_value(issuer, subject, context)
        if value is None and context != GENERAL_CONTEXT:
            general = self._trust_value(issuer, subject, GENERAL_CONTEXT)
            if general is not None:
                return general / 100.0 * (self.fallback if general > 0 else 1.0)
        return 0.0 if value is None else value / 100.0

    def _current(self) -> Iterable[Attestation]:
        return (h for h in self._heads.values() if is_current(h, now_ms=self.now_ms))

    def edges(self, *, reached_only: bool = False) -> list[Edge]:
        """The current trust statements (of reached issuers only, if asked), in a stable order."""
        edges = [
            Edge(issuer=h.issuer, subject=s.subject, value=s.value, context=s.context)
            for h in self._current()
            if isinstance(s := h.statement, Trust)
            and (not reached_only or h.issuer in self._reached)
        ]
        edges.sort(key=lambda e: (e.issuer, e.subject, e.context))
        return edges
