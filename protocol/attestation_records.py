"""The attestation's records and their canonical bytes (SPEC §2-§3).

This module owns `AttestationBody` (what an issuer signs), `SignedEnvelope`
(decoded, signature unchecked) and `Attestation` (verified), their canonical
encoding, content ids, and the few facts read straight from checked bytes.
It neither decodes peer bytes (`protocol.envelope_decoding`) nor checks
signatures (`protocol.attestation`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NewType, TypeAlias

from protocol.codec import Value, pack
from protocol.errors import (
    FieldError,
    Reason,
)
from protocol.identity import SIGNATURE_BYTES, IdentityId
from protocol.statement import (
    Certify,
    Kind,
    Profile,
    Rate,
    Revoke,
    Slot,
    Statement,
    Trust,
)

__all__ = [
    "ATTESTATION_ID_BYTES",
    "FORMAT_VERSION",
    "ID_PREFIX_BYTES",
    "MAX_ENVELOPE_BYTES",
    "MAX_TIME_MS",
    "SIGNATURE_DOMAIN",
    "Attestation",
    "AttestationBody",
    "AttestationId",
    "SignedEnvelope",
    "attestation_id",
    "encode_body",
    "envelope_issuer",
    "is_naming_envelope",
    "split_id_prefixes",
]

AttestationId = NewType("AttestationId", bytes)

FORMAT_VERSION = 1
MAX_ENVELOPE_BYTES = 1024
MAX_TIME_MS = 2**53 - 1  # exact in every JSON and JavaScript number
ATTESTATION_ID_BYTES = 32
# An id shortened to its first 8 bytes: announcements (wire `ihave8`, `graft8`)
# and sync prefix lists (SPEC §13) name attestations by it.
ID_PREFIX_BYTES = 8
SIGNATURE_DOMAIN = b"trustnode/attestation/v1\x00"
# Canonical envelope = fixarray(2) || body || bin8(64) || signature (SPEC §2.4).
_ENVELOPE_HEAD = b"\x92"
_SIGNATURE_HEAD = b"\xc4\x40"
_ENVELOPE_TAIL_BYTES = len(_SIGNATURE_HEAD) + SIGNATURE_BYTES
_BODY_BYTES = slice(len(_ENVELOPE_HEAD), -_ENVELOPE_TAIL_BYTES)  # of a canonical envelope
_STATEMENT_TYPES = frozenset({Trust, Certify, Rate, Revoke, Profile})
_TIED_TO_ISSUER = frozenset({Revoke, Profile})


def _check_time(value: object, field: str) -> None:
    if type(value) is not int:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be an integer")
    if not 0 <= value <= MAX_TIME_MS:
        raise FieldError(Reason.OUT_OF_RANGE, f"{field} must be in 0..2**53-1")


@dataclass(frozen=True, slots=True, kw_only=True)
class AttestationBody:
    """Everything an issuer signs: who, when, until when, and the statement."""

    issuer: IdentityId
    issued_at_ms: int
    expires_at_ms: int | None = None
    statement: Statement

    def __post_init__(self) -> None:
        _check_body(self.issuer, self.issued_at_ms, self.expires_at_ms, self.statement)

    @property
    def slot(self) -> Slot:
        """The slot this attestation fills (a revocation: the slot it empties)."""
        statement = self.statement
        kind = statement.target_kind if isinstance(statement, Revoke) else statement.kind
        return Slot(issuer=self.issuer, kind=kind, subject=statement.subject, scope=statement.scope)


def _check_body(
    issuer: object, issued_at_ms: object, expires_at_ms: object, statement: object
) -> None:
    """The body's own rules, for `AttestationBody` and the decoder's fast path alike.

    Raises:
        FieldError: `BAD_FIELD` or `OUT_OF_RANGE`.
    """
    if type(issuer) is not bytes or len(issuer) != 32:
        raise FieldError(Reason.BAD_FIELD, "issuer must be 32 bytes")
    _check_time(issued_at_ms, "issued_at_ms")
    if expires_at_ms is not None:
        _check_time(expires_at_ms, "expires_at_ms")
        if expires_at_ms <= issued_at_ms:  # type: ignore[operator]
            raise FieldError(Reason.OUT_OF_RANGE, "expires_at_ms must be after issued_at_ms")
        if type(statement) is Revoke:
            raise FieldError(Reason.OUT_OF_RANGE, "a revocation never expires")
    if type(statement) not in _STATEMENT_TYPES:
        raise FieldError(Reason.BAD_FIELD, "statement must be a v1 statement")
    # Only profiles and their revocations are tied to the issuer.
    tied = type(statement) in _TIED_TO_ISSUER and _is_about_itself(statement)  # type: ignore[arg-type]
    if tied and statement.subject != issuer:  # type: ignore[attr-defined]
        raise FieldError(Reason.OUT_OF_RANGE, "a profile is about its issuer only")


def _is_about_itself(statement: Statement) -> bool:
    """Whether `statement` fills (or empties) a profile slot: one per issuer."""
    if isinstance(statement, Revoke):
        return statement.target_kind is Kind.PROFILE
    return isinstance(statement, Profile)


def _statement_fields(statement: Statement) -> tuple[Value, ...]:
    if isinstance(statement, Trust):
        if statement.name is None:
            return (statement.subject, statement.context, statement.value)
        return (statement.subject, statement.context, statement.value, statement.name)
    if isinstance(statement, Profile):
        return (statement.subject, statement.name, statement.about)
    if isinstance(statement, Certify):
        return (statement.subject, statement.claim, statement.commitment)
    if isinstance(statement, Rate):
        return (statement.subject, statement.context, statement.value, statement.reference)
    return (int(statement.target_kind), statement.subject, statement.scope)


def encode_body(body: AttestationBody) -> bytes:
    """The canonical bytes of `body`: what is signed, after the domain (SPEC §2.3)."""
    prefix: tuple[Value, ...] = (
        FORMAT_VERSION,
        int(body.statement.kind),
        body.issuer,
        body.issued_at_ms,
        body.expires_at_ms,
    )
    return pack(prefix + _statement_fields(body.statement))


def _envelope_bytes(body_bytes: bytes, signature: bytes) -> bytes:
    return _ENVELOPE_HEAD + body_bytes + _SIGNATURE_HEAD + signature


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedEnvelope:
    """A decoded attestation whose signature has NOT been checked yet.

    `data` holds the exact bytes received; construction checks that they are
    the canonical encoding of `body` and `signature`, so the fields shown are
    always the fields signed.
    """

    body: AttestationBody
    signature: bytes
    data: bytes

    def __post_init__(self) -> None:
        if type(self.signature) is not bytes or len(self.signature) != SIGNATURE_BYTES:
            raise FieldError(Reason.BAD_FIELD, f"signature must be {SIGNATURE_BYTES} bytes")
        if self.data != _envelope_bytes(encode_body(self.body), self.signature):
            raise FieldError(Reason.NON_CANONICAL, "bytes are not the canonical encoding")

    @property
    def body_bytes(self) -> bytes:
        """The signed part of `data`: the canonical body."""
        return self.data[len(_ENVELOPE_HEAD) : -_ENVELOPE_TAIL_BYTES]


@dataclass(frozen=True, slots=True, init=False)
class Attestation:
    """A verified attestation: its signature checked, its content id computed.

    Obtain one only from `verify_envelope` (or `sign_attestation` for our own):
    the type is the proof that the signature was checked. The id is derived
    from the envelope here, so it can never disagree with it.
    """

    envelope: SignedEnvelope
    id: AttestationId = field(init=False)
    _slot: Slot | None = field(init=False, default=None, repr=False, compare=False)

    def __init__(self, envelope: SignedEnvelope) -> None:
        # Hand-written, not the dataclass's: one is built per record received,
        # and its frozen __init__ + __post_init__ (object.__setattr__ per field,
        # a call to wrap the id in its NewType) cost six times the id's hash.
        _SET_ATTESTATION_ENVELOPE(self, envelope)
        digest = _blake2b(envelope.data, digest_size=ATTESTATION_ID_BYTES).digest()
        _SET_ATTESTATION_ID(self, digest)
        _SET_ATTESTATION_SLOT(self, None)

    def __post_init__(self) -> None:
        # Not called by our __init__ above: for subclasses whose own dataclass
        # __init__ runs instead (node/trust's MemberAttestation) and calls it.
        object.__setattr__(self, "id", attestation_id(self.envelope.data))

    @property
    def slot(self) -> Slot:
        """The slot this attestation fills (see `AttestationBody.slot`).

        Built on first use, then kept: stores, engines and gossip ask for it
        again and again, but a check that only verifies (a forwarded copy, a
        refused one) never needs its hash (a third of building an attestation).
        """
        slot = self._slot
        if slot is None:
            slot = self.envelope.body.slot
            object.__setattr__(self, "_slot", slot)
        return slot

    @property
    def data(self) -> bytes:
        """The canonical envelope bytes, as stored and sent."""
        return self.envelope.data

    @property
    def body(self) -> AttestationBody:
        """What the issuer signed."""
        return self.envelope.body

    @property
    def issuer(self) -> IdentityId:
        """Who made this statement."""
        return self.envelope.body.issuer

    @property
    def issued_at_ms(self) -> int:
        """The issuer's claim of when it was made (unix ms)."""
        return self.envelope.body.issued_at_ms

    @property
    def expires_at_ms(self) -> int | None:
        """When it stops counting (unix ms), if ever."""
        return self.envelope.body.expires_at_ms

    @property
    def statement(self) -> Statement:
        """What is said."""
        return self.envelope.body.statement

    @property
    def kind(self) -> Kind:
        """The statement's kind."""
        return self.envelope.body.statement.kind


_Set: TypeAlias = Callable[[object, object], None]
_blake2b = hashlib.blake2b


def _setters(cls: type, *names: str) -> tuple[_Set, ...]:
    # The slot descriptors' own setters, for records whose fields are already
    # checked: a frozen dataclass refuses setattr, and object.__setattr__ costs
    # three times as much per field.
    return tuple(cls.__dict__[name].__set__ for name in names)


_SET_ATTESTATION_ENVELOPE, _SET_ATTESTATION_ID, _SET_ATTESTATION_SLOT = _setters(
    Attestation, "envelope", "id", "_slot"
)
_BODY_SET = _setters(AttestationBody, "issuer", "issued_at_ms", "expires_at_ms", "statement")
_ENVELOPE_SET = _setters(SignedEnvelope, "body", "signature", "data")


def attestation_id(data: bytes) -> AttestationId:
    """The content id: BLAKE2b-256 (RFC 7693, 32-byte digest) of the envelope bytes."""
    return AttestationId(hashlib.blake2b(data, digest_size=ATTESTATION_ID_BYTES).digest())


# Every canonical envelope starts 0x92, fixarray(8 or 9), fixint version, fixint
# kind, bin8 header 0xc4 0x20: the issuer's 32 bytes follow (SPEC §2.4).
_ISSUER_AT = slice(6, 38)


def envelope_issuer(data: bytes) -> IdentityId:
    """The issuer of a checked envelope, sliced from its bytes without decoding.

    Forwarding looks up each new attestation's issuer (its source tree, see
    `protocol.routes`); decoding it again would cost more than the rest of
    forwarding. Only for envelopes that have been decoded once already.
    """
    return IdentityId(data[_ISSUER_AT])


# The length of a canonical msgpack unsigned integer by its first byte (SPEC §2.2).
_UINT_BYTES = {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}
_ISSUED_AT = 38  # after 0x92, fixarray, version, kind and the issuer's 34 bytes
_NAMED_TRUST_HEAD = 0x99  # fixarray(9): a trust with its optional name


def is_naming_envelope(data: bytes) -> bool:
    """Whether a checked envelope is a naming record: a profile, a profile's
    revocation or a named trust (SPEC §9.2), from its bytes without decoding.

    Peers that did not name the `names` capability refuse those as fatal, so
    gossip leaves them out of what it sends such peers. Only for envelopes that
    have been decoded once already (like `envelope_issuer`); never raises.
    """
    if len(data) <= _ISSUED_AT:
        return False
    kind = data[3]
    if kind == Kind.PROFILE.value:
        return True
    if kind == Kind.TRUST.value:
        return data[1] == _NAMED_TRUST_HEAD
    if kind != Kind.REVOKE.value:
        return False
    # A revocation never expires, so expires_at_ms is nil and the target kind
    # is the byte after it.
    target_at = _ISSUED_AT + _UINT_BYTES.get(data[_ISSUED_AT], 1) + 1
    return len(data) > target_at and data[target_at] == Kind.PROFILE.value


def split_id_prefixes(data: bytes) -> list[bytes]:
    """Id prefixes sent back to back, one by one (the length is checked by the caller)."""
    return [data[k : k + ID_PREFIX_BYTES] for k in range(0, len(data), ID_PREFIX_BYTES)]
