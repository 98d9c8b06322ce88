"""The naming statements a node holds: current profiles and named vouches, by subject.

Fed from the store's change feed like the trust engine (any order, heads or
not: supersession is applied here too), it keeps only the slots that can name
someone — profiles and trusts — so that building a `NameBook` costs a pass over
those, not a store query. Pure: no store, no clock but the `now_ms` it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from node.names.resolver import NameBook
from node.store.interface import AttestationStore
from node.trust.identity import IdentityLayer
from protocol.attestation import Attestation
from protocol.devices import is_identity_statement
from protocol.identity import IdentityId
from protocol.statement import Kind, Profile, SlotId, Trust
from protocol.supersession import is_current, order_key

__all__ = ["NameIndex"]

_NAMING_SLOTS = (Kind.PROFILE, Kind.TRUST)


class NameIndex:
    """Heads of the profile and trust slots seen so far."""

    def __init__(self) -> None:
        self._heads: dict[SlotId, Attestation] = {}
        self.cursor = 0  # the store's change feed position we have read up to
        # Device keys (SPEC §16): a device's profile and named vouches are its member's.
        self._identities = IdentityLayer()

    def member(self, key: IdentityId) -> IdentityId:
        """The member `key` speaks for (itself unless it is a bound device)."""
        return self._identities.member(key)

    def add(self, attestations: Iterable[Attestation]) -> None:
        """Take verified attestations in any order (revocations included)."""
        identities = self._identities
        for signed in attestations:
            if signed.slot.kind not in _NAMING_SLOTS and not is_identity_statement(
                signed.statement
            ):
                continue
            attestation = identities.view(signed)
            if attestation is None:
                continue
            head = self._heads.get(attestation.slot.id)
            if head is not None and order_key(attestation) <= order_key(head):
                identities.displaced(attestation)
                continue
            if head is not None:
                identities.displaced(head)
            self._heads[attestation.slot.id] = attestation
        if identities.remapped:  # a binding changed who speaks for whom: re-read, once
            identities.remapped = False
            raw = [identities.raw(head) for head in self._heads.values()]
            raw.extend(identities.take_kept())
            self._heads.clear()
            self.add(raw)

    def follow(self, store: AttestationStore, *, batch: int = 1000) -> None:
        """Read what the store holds after our cursor (call in the store's thread)."""
        while changes := store.changes_since(self.cursor, limit=batch):
            self.add(change.attestation for change in changes)
            self.cursor = changes[-1].seq

    def _current(self, now_ms: int) -> Iterable[Attestation]:
        return (h for h in self._heads.values() if is_current(h, now_ms=now_ms))

    def named(self, *, now_ms: int) -> set[IdentityId]:
        """Every identity a current profile or named vouch names, and the givers."""
        found: set[IdentityId] = set()
        for head in self._current(now_ms):
            statement = head.statement
            if isinstance(statement, Profile) or (
                isinstance(statement, Trust) and statement.name is not None
            ):
                found |= {statement.subject, head.issuer}
        return found

    def book(
        self,
        *,
        viewer: IdentityId,
        petnames: Mapping[IdentityId, str],
        trust: Mapping[IdentityId, float],
        now_ms: int,
    ) -> NameBook:
        """The `NameBook` of the current statements, for `viewer`."""
        profiles: dict[IdentityId, str] = {}
        given: dict[IdentityId, list[tuple[IdentityId, str]]] = {}
        for head in self._current(now_ms):
            statement = head.statement
            if isinstance(statement, Profile):
                profiles[statement.subject] = statement.name
            # A flag is no introduction: only vouches give names.
            elif (
                isinstance(statement, Trust)
                and statement.name is not None
                and statement.value > 0
                and statement.subject != head.issuer
            ):
                given.setdefault(statement.subject, []).append((head.issuer, statement.name))
        return NameBook(
            viewer=viewer, petnames=petnames, profiles=profiles, given=given, trust=trust
        )
