"""Identity resolution for the trust engine: keys to members (SPEC §16).

The store and the wire keep attestations exactly as signed: a slot is the
signing key's (SPEC §5), which is what old peers and relays understand. The
trust engine reasons on *members* instead. This layer maps each attestation,
when it enters the engine, to what it says for the member:

* signed by a device of root R (`protocol.devices`) before the device's
  cut-off: it is R's statement, in R's slot (a device's vouch for Bob and
  R's own share the slot `(R, trust, Bob, general)`: the newest counts);
* signed by a device at or after its cut-off: refused (not an edge, not a
  certification, not a rating);
* about a device key: about its root;
* signed by a root key at or after its rotation (SPEC §17): refused; a
  statement by or about any key of a rotated chain is the chain's member's
  (its inception key);
* an identity statement itself (`key:` claims): never evidence;
* a key recovered by custodians (SPEC §18): like a rotation, from the
  recovery's effective time, read at the engine's clock (`advance`).

Why a mapping on entry rather than a second supersession pass: the engine's
incremental state (heads, walks, reached set) is keyed by slot and identity,
so mapping before it keeps every later step unchanged, and an attestation no
binding names costs two dictionary look-ups. A binding that changes the
mapping (rare: a member pairs or revokes a device) rebuilds the engine from
the raw attestations the layer kept: the heads, the superseded ones (a
device's attestation superseded by its own later, refused one must count
again once the revocation is known) and the refused ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from protocol.attestation import Attestation, AttestationId
from protocol.devices import is_identity_statement
from protocol.identity import IdentityId
from protocol.statement import Certify, Revoke, Slot, Statement, Subject
from protocol.succession import IdentityBook

__all__ = ["IdentityLayer", "MemberAttestation"]


@dataclass(frozen=True, slots=True, eq=False)
class MemberAttestation(Attestation):
    """A verified attestation as its member's: `issuer` and `subject` resolved.

    The envelope, id and times are the signed ones (so supersession order is
    unchanged); only who speaks and who is spoken of are the members'.
    """

    member: IdentityId = field(default=IdentityId(b""))  # always given
    resolved: Statement | None = None

    def __post_init__(self) -> None:
        Attestation.__post_init__(self)
        statement = self.statement
        kind = statement.target_kind if isinstance(statement, Revoke) else statement.kind
        slot = Slot(issuer=self.member, kind=kind, subject=statement.subject, scope=statement.scope)
        object.__setattr__(self, "_slot", slot)  # what `Attestation.slot` answers from now on

    @property
    def issuer(self) -> IdentityId:
        """The member who made this statement (the signer's root)."""
        return self.member

    @property
    def statement(self) -> Statement:
        """What is said, about members."""
        assert self.resolved is not None
        return self.resolved


@dataclass(slots=True)
class IdentityLayer:
    """Device bindings, and the raw attestations a re-mapping needs (see module doc)."""

    book: IdentityBook = field(default_factory=IdentityBook)
    # key -> root, and device -> cut-off, as of the bindings seen so far.
    _members: dict[IdentityId, IdentityId] = field(default_factory=dict)
    _cutoffs: dict[IdentityId, int] = field(default_factory=dict)
    # Raw forms of what the engine holds mapped, by id; and what it does not hold.
    _raw: dict[AttestationId, Attestation] = field(default_factory=dict)
    _refused: dict[AttestationId, Attestation] = field(default_factory=dict)
    _spare: dict[AttestationId, Attestation] = field(default_factory=dict)
    remapped: bool = False
    # Whether any key maps to another member or has a cut-off: while not, `view`
    # returns every trust statement unchanged (the engine skips the call).
    active: bool = False

    def advance(self, now_ms: int) -> None:
        """Move the clock recoveries are read at (SPEC §18.3): one may take effect or lapse.

        Sets `remapped` when the mapping changed (the caller rebuilds); costs
        nothing while no recovery statement was ever seen.
        """
        if self.book.set_now(now_ms):
            self._refresh()

    def member(self, key: IdentityId) -> IdentityId:
        """The member `key` speaks for (itself unless it is a device)."""
        return self._members.get(key, key)

    def view(self, attestation: Attestation) -> Attestation | None:
        """What the engine should hold for `attestation`: itself, its member form, or None.

        Sets `remapped` when `attestation` is a binding that changed who is a
        device of whom or a cut-off: the caller then rebuilds (`raw_heads`).
        """
        body = attestation.envelope.body  # not the properties: this runs per attestation
        statement = body.statement
        kind = type(statement)
        if (kind is Certify or kind is Revoke) and is_identity_statement(statement):
            if self.book.add(attestation):
                self._refresh()
            return None
        members = self._members
        cutoffs = self._cutoffs
        if not cutoffs and not members:
            return attestation  # nobody has devices or rotated: nothing to map
        signer = body.issuer
        subject = statement.subject
        if (
            signer not in members
            and signer not in cutoffs
            and (isinstance(subject, str) or subject not in members)
        ):
            return attestation
        cutoff = self._cutoffs.get(signer)
        if cutoff is not None and attestation.issued_at_ms >= cutoff:
            self._refused[attestation.id] = attestation
            return None
        member = members.get(signer, signer)
        resolved = statement
        if isinstance(subject, bytes) and subject in members:
            resolved = dataclasses.replace(statement, subject=members[subject])
        mapped = MemberAttestation(attestation.envelope, member=member, resolved=resolved)
        self._raw[attestation.id] = attestation
        return mapped

    def displaced(self, attestation: Attestation) -> None:
        """The engine dropped `attestation` (superseded in its slot): keep its raw form."""
        self._spare[attestation.id] = self.raw(attestation)

    def raw(self, attestation: Attestation) -> Attestation:
        """The attestation as signed, for one the engine holds (or dropped).

        Rebuilt from the envelope when the map has lost it (a duplicate of a
        head arrives and is dropped under the same id): a mapped form must never
        be offered again as if it were signed that way.
        """
        found = self._raw.get(attestation.id)
        if found is not None:
            return found
        if isinstance(attestation, MemberAttestation):
            return Attestation(attestation.envelope)
        return attestation

    def take_kept(self) -> list[Attestation]:
        """Everything a rebuild must offer again besides the engine's heads (and forget it)."""
        kept = [*self._spare.values(), *self._refused.values()]
        self._spare.clear()
        self._refused.clear()
        self._raw.clear()
        return kept

    def _refresh(self) -> None:
        book = self.book
        members: dict[IdentityId, IdentityId] = {}
        cutoffs: dict[IdentityId, int] = {}
        for key in book.candidates():
            member = book.member(key)
            if member != key:
                members[key] = member
            cutoff = book.cutoff(key)
            if cutoff is not None:
                cutoffs[key] = cutoff
        if members != self._members or cutoffs != self._cutoffs:
            self._members, self._cutoffs = members, cutoffs
            self.remapped = True
        self.active = bool(members or cutoffs)


def resolve_subject(layer: IdentityLayer, subject: Subject) -> Subject:
    """`subject` as a member (things are unchanged)."""
    return subject if isinstance(subject, str) else layer.member(subject)
