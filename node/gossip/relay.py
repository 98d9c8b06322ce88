"""Relay policy: what this node agrees to store (and so to forward) from whom.

An identity farm can mint valid attestations by the million; signatures do
not stop it, so storage must. Which issuers are *vouched* is decided by
`method`:

* `flow` (the default): the members that capacity flow from this node's own
  identity (the first anchor) accepts (`node.trust.accepted_members`,
  Advogato): a farm behind a confused member gets at most that member's
  capacity, however many identities it mints;
* `horizon`: every identity that a chain of at most `horizon_hops` current
  positive trust attestations reaches from an anchor (simpler, but a farm
  within the horizon is vouched whole).

Vouched issuers are stored without limit; every other issuer gets a small quota of stored
attestations (`unvouched_quota`), and all of them together at most
`unvouched_total` (identities are free: a farm of millions with one attestation
each would pass any per-issuer quota); the rest are refused with the benign
reason `quota` (the peer is not blamed: it may have relayed in good faith).

The trade-off for newcomers: before anyone vouches for them, only their first
`unvouched_quota` attestations travel beyond the members who store them
anyway; a vouch (typically from whoever invited them) lifts the limit at the
next refresh. Honest newcomers rarely need more than a few attestations before
someone they know vouches for them; an identity farm stays capped at
quota x identities, and each of its identities needs a real member's vouch to
grow.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from node.store import AttestationStore
from node.trust import RandomWalk, TrustGraph, accepted_members
from protocol.attestation import Attestation
from protocol.errors import Reason
from protocol.identity import IdentityId
from protocol.statement import Trust
from protocol.succession import IdentityBook

__all__ = ["RelayGate", "RelayPolicy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayPolicy:
    """How far vouching reaches, and what an unvouched issuer may store."""

    method: Literal["flow", "horizon"] = "flow"
    horizon_hops: int = 3
    unvouched_quota: int = 20
    unvouched_total: int = 200_000  # all unvouched issuers together (identities are free)
    refresh_ms: int = 60_000


class RelayGate:
    """The admission function for `ingest`, with a cached vouched set."""

    def __init__(
        self,
        *,
        anchors: Iterable[IdentityId],
        policy: RelayPolicy = RelayPolicy(),  # frozen: safe as a default
        wall_clock_ms: Callable[[], int],
    ) -> None:
        ordered = list(anchors)
        self._viewer = ordered[0] if ordered else None  # flow starts from the first anchor
        self._anchors = frozenset(ordered)
        self._anchor_order = ordered
        self._policy = policy
        self._clock = wall_clock_ms
        self._vouched: frozenset[IdentityId] = frozenset()
        self._computed_at: int | None = None
        self.refused = 0
        self._unvouched_stored = 0  # recounted at each refresh, counted up in between
        self._admitted: frozenset[IdentityId] = frozenset()  # by our single-use invites

    def vouched(self, store: AttestationStore) -> frozenset[IdentityId]:
        """Identities within the trust horizon (recomputed at most every `refresh_ms`)."""
        now_ms = self._clock()
        if self._computed_at is None or now_ms - self._computed_at >= self._policy.refresh_ms:
            edges = store.positive_trust_edges(now_ms=now_ms)
            book = IdentityBook()
            for binding in store.key_bindings():
                book.add(binding)
            # A device's vouch is its member's, and a vouch for a device is for its member
            # (SPEC §16.3); the member's devices are then vouched with it, until their cut-off.
            edges = [
                (book.member(issuer), book.member(subject))
                for issuer, subject in edges
                if book.cutoff(issuer) is None
            ]
            edges += _before_cutoffs(store, book, now_ms)
            anchors = [book.member(anchor) for anchor in self._anchor_order]
            if self._policy.method == "flow":
                vouched = self._accepted(edges, anchors)
            else:
                vouched = self._reach(edges, anchors)
            devices = {
                key
                for key in book.candidates()
                if book.member(key) in vouched and book.counts(key, now_ms)
            }
            self._vouched = vouched | devices | self._admitted
            self._computed_at = now_ms
            held = sum(store.count_by_issuer(sorted(self._vouched)).values())
            self._unvouched_stored = store.statistics().attestations - held
        return self._vouched

    @property
    def last_vouched(self) -> frozenset[IdentityId]:
        """The vouched set as last computed (no store access: callable anywhere)."""
        return self._vouched

    def admit(self, identities: Iterable[IdentityId]) -> None:
        """Store without quota what `identities` issue: the joiners our single-use
        invites were redeemed by (SPEC §12) -- our word for one identity each,
        as a vouch would be, but not a vouch: nobody else relays them for it."""
        self._admitted |= frozenset(identities)
        self.invalidate()

    def invalidate(self) -> None:
        """Recompute at the next admission (e.g. after we vouched for someone)."""
        self._computed_at = None

    def _accepted(
        self, edges: list[tuple[IdentityId, IdentityId]], anchors: list[IdentityId]
    ) -> frozenset[IdentityId]:
        """Flow from the first anchor (as a member: a device's node starts from its root)."""
        if self._viewer is None:
            return frozenset()
        graph = TrustGraph.from_weights(
            dict.fromkeys((pair for pair in edges if pair[0] != pair[1]), 1.0),
            identities=anchors,
        )
        walk = RandomWalk(graph, anchors[0])
        accepted = accepted_members(walk).accepted
        return frozenset(walk.identities[n] for n in accepted) | self._anchors | set(anchors)

    def _reach(
        self, edges: list[tuple[IdentityId, IdentityId]], anchors: list[IdentityId]
    ) -> frozenset[IdentityId]:
        out: dict[IdentityId, list[IdentityId]] = {}
        for issuer, subject in edges:
            out.setdefault(issuer, []).append(subject)
        seen = set(anchors) | self._anchors
        frontier = deque((anchor, 0) for anchor in anchors)
        while frontier:
            node, hops = frontier.popleft()
            if hops == self._policy.horizon_hops:
                continue
            for subject in out.get(node, ()):
                if subject not in seen:
                    seen.add(subject)
                    frontier.append((subject, hops + 1))
        return frozenset(seen)

    def refused_unverified(self, store: AttestationStore, issuers: list[IdentityId]) -> list[bool]:
        """For each item's issuer: refused whatever it says (unvouched and at its quota,
        or any unvouched issuer once the budget is spent)?

        Asked before signatures are checked: a farm flooding past its budget
        then costs us a decode per attestation, not a signature check.
        """
        vouched = self.vouched(store)
        strangers = sorted({issuer for issuer in issuers if issuer not in vouched})
        if not strangers:
            return [False] * len(issuers)
        if self._unvouched_stored >= self._policy.unvouched_total:
            full = set(strangers)
        else:
            stored = store.count_by_issuer(strangers)
            full = {i for i in strangers if stored[i] >= self._policy.unvouched_quota}
        decisions = [issuer in full for issuer in issuers]
        self.refused += sum(decisions)
        return decisions

    def __call__(
        self, store: AttestationStore, attestations: list[Attestation]
    ) -> list[Reason | None]:
        """Admit vouched issuers; cap the others at the quota (an `ingest` admission)."""
        vouched = self.vouched(store)
        strangers = sorted({a.issuer for a in attestations if a.issuer not in vouched})
        stored = store.count_by_issuer(strangers) if strangers else {}
        decisions: list[Reason | None] = []
        for attestation in attestations:
            issuer = attestation.issuer
            if issuer in vouched:
                decisions.append(None)
            elif (
                stored[issuer] < self._policy.unvouched_quota
                and self._unvouched_stored < self._policy.unvouched_total
            ):
                stored[issuer] += 1
                self._unvouched_stored += 1
                decisions.append(None)
            else:
                self.refused += 1
                decisions.append(Reason.QUOTA)
        return decisions


def _before_cutoffs(
    store: AttestationStore, book: IdentityBook, now_ms: int
) -> list[tuple[IdentityId, IdentityId]]:
    """The positive vouches of revoked devices dated before their cut-off, as members'.

    Revoked devices are few; their edges are read with their times, which the
    store's edge list leaves out.
    """
    edges = []
    for device in sorted(book.candidates()):
        cutoff = book.cutoff(device)
        if cutoff is None:
            continue
        for held in store.current_by_issuer(device, now_ms=now_ms):
            statement = held.statement
            if isinstance(statement, Trust) and statement.value > 0 and held.issued_at_ms < cutoff:
                edges.append((book.member(device), book.member(statement.subject)))
    return edges
