"""The naming statements a node holds: current profiles and named vouches, by subject.

Fed from the store's change feed like the trust engine (any order, heads or
not: supersession is applied here too), it keeps only the slots that can name
someone — profiles and trusts — so that building a `NameBook` costs a pass over
those, not a store query. No clock but the `now_ms` it is given.

Every table and response asks for names, so the last `NameBook` is kept and
handed out again while nothing it was built from changed: the store (our
change-feed cursor), our petnames (their revision) and the time (statements
expire; a book is kept at most `BOOK_TTL_MS`). Rebuilding one for every
request cost 85 ms at 300 members and grew with the community
(benchmarks/names.py).
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

__all__ = ["BOOK_TTL_MS", "NameIndex"]

_NAMING_SLOTS = (Kind.PROFILE, Kind.TRUST)
BOOK_TTL_MS = 60_000  # an expiring vouch or profile stops naming within a minute


def _names_someone(attestation: Attestation) -> bool:
    statement = attestation.statement
    return isinstance(statement, Profile) or (
        isinstance(statement, Trust) and statement.name is not None
    )


class NameIndex:
    """Heads of the profile and trust slots seen so far."""

    def __init__(self) -> None:
        # Every profile and trust slot's head (and the identity statements, SPEC
        # §16-§17), and apart those that name someone: most vouches carry no name,
        # and a pass over the naming heads alone is what each new book costs.
        self._heads: dict[SlotId, Attestation] = {}
        self._naming: dict[SlotId, Attestation] = {}
        self.cursor = 0  # the store's change feed position we have read up to
        self._book: tuple[tuple[int, int], int, NameBook] | None = None  # key, built at, book
        # Device keys (SPEC §16): a device's profile and named vouches are its member's.
        self._identities = IdentityLayer()

    def member(self, key: IdentityId) -> IdentityId:
        """The member `key` speaks for (itself unless it is a bound device)."""
        return self._identities.member(key)

    @property
    def last_book(self) -> NameBook | None:
        """The book built last (perhaps stale): for labels that cannot wait, as in logs."""
        return None if self._book is None else self._book[2]

    def cached_book(self, *, petnames_revision: int, now_ms: int) -> NameBook | None:
        """The last book, if nothing it was built from changed since (else None)."""
        if self._book is None:
            return None
        key, built_at, book = self._book
        fresh = 0 <= now_ms - built_at < BOOK_TTL_MS
        return book if fresh and key == (self.cursor, petnames_revision) else None

    def keep(self, book: NameBook, *, petnames_revision: int, now_ms: int) -> None:
        """Remember `book`, built at `now_ms` from our cursor and those petnames."""
        self._book = ((self.cursor, petnames_revision), now_ms, book)

    def add(self, attestations: Iterable[Attestation]) -> None:
        """Take verified attestations in any order (revocations included)."""
        identities = self._identities
        for signed in attestations:
            if signed.slot.kind not in _NAMING_SLOTS and not is_identity_statement(
                signed.statement
            ):
                continue
            attestation = identities.view(signed)  # as its member's, for a device
            if attestation is None:
                continue
            slot_id = attestation.slot.id
            head = self._heads.get(slot_id)
            if head is not None and order_key(attestation) <= order_key(head):
                identities.displaced(attestation)
                continue  # an older statement of the slot: the head stays
            if head is not None:
                identities.displaced(head)
            self._heads[slot_id] = attestation
            if _names_someone(attestation):
                self._naming[slot_id] = attestation
            else:  # superseded by an unnamed vouch or a revocation: it names no one now
                self._naming.pop(slot_id, None)
        if identities.remapped:  # a binding changed who speaks for whom: re-read, once
            identities.remapped = False
            raw = [identities.raw(head) for head in self._heads.values()]
            raw.extend(identities.take_kept())
            self._heads.clear()
            self._naming.clear()
            self.add(raw)

    def follow(self, store: AttestationStore, *, batch: int = 1000) -> None:
        """Read what the store holds after our cursor (call in the store's thread)."""
        while changes := store.changes_since(self.cursor, limit=batch):
            self.add(change.attestation for change in changes)
            self.cursor = changes[-1].seq

    def _current(self, now_ms: int) -> Iterable[Attestation]:
        return (h for h in self._naming.values() if is_current(h, now_ms=now_ms))

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
