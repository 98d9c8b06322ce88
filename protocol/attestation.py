"""The signed attestation: canonical encoding, signing, decoding, verification, ids.

This module owns the v1 record that peers exchange (SPEC §2-§4). The path from
peer bytes to something the node may act on has two typed steps, and the types
say which step a value has passed:

    bytes --decode_envelope--> SignedEnvelope --verify_envelope--> Attestation
           (DecodeError)       decoded, unchecked  (VerificationError)  verified

Cheap checks come first (length, structure, canonical form), the signature
last. Nothing here reads a clock: freshness takes `now_ms` as an argument.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NewType, TypeAlias, cast

import nacl.bindings
import nacl.exceptions

from protocol.codec import Value, pack, unpack
from protocol.errors import (
    DecodeError,
    FieldError,
    LocalProtocolError,
    Reason,
    VerificationError,
)
from protocol.identity import SIGNATURE_BYTES, IdentityId, IdentityKey
from protocol.statement import (
    Certify,
    Kind,
    Profile,
    Rate,
    Revoke,
    Slot,
    Statement,
    Trust,
    checked_statement,
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
    "check_fresh",
    "decode_attestation",
    "decode_envelope",
    "encode_body",
    "envelope_issuer",
    "is_naming_envelope",
    "open_signed",
    "sign_attestation",
    "signed_message",
    "split_id_prefixes",
    "verified_by",
    "verify_envelope",
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
_crypto_sign_open = nacl.bindings.crypto_sign_open
# Fields after the common prefix (version, kind, issuer, issued_at, expires_at).
_PREFIX_FIELDS = 5
# Keyed by the wire code: plain int lookups, since calling `Kind(code)` or hashing
# an enum member costs more than a field check. A trust has a ninth field only
# when it carries a name (SPEC §3.2): the old eight-field form keeps its bytes.
_FIELD_COUNTS = {
    Kind.TRUST.value: (8, 9),
    Kind.CERTIFY.value: (8,),
    Kind.RATE.value: (9,),
    Kind.REVOKE.value: (8,),
    Kind.PROFILE.value: (8,),
}
_TARGET_KINDS = {int(kind): kind for kind in (Kind.TRUST, Kind.CERTIFY, Kind.RATE, Kind.PROFILE)}
_STATEMENT_TYPES = frozenset({Trust, Certify, Rate, Revoke, Profile})
_TIED_TO_ISSUER = frozenset({Revoke, Profile})
# A body's fields as msgpack decoded them, unchecked: the records check each
# one's type in __post_init__ (one definition of valid). `Any`, not `object`,
# so that no `cast` call (a real call, on every field of every record) names
# the types those checks are about to enforce.
_Fields: TypeAlias = tuple[Any, ...]


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


def sign_attestation(body: AttestationBody, key: IdentityKey) -> Attestation:
    """Sign `body` with `key` (SPEC §4.1).

    Raises:
        LocalProtocolError: `key` is not the body's issuer.
    """
    if key.identity != body.issuer:
        raise LocalProtocolError("the signing key is not the issuer's")
    body_bytes = encode_body(body)
    signature = key.sign(SIGNATURE_DOMAIN + body_bytes)
    data = _envelope_bytes(body_bytes, signature)
    return Attestation(SignedEnvelope(body=body, signature=signature, data=data))


def decode_envelope(data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> SignedEnvelope:
    """Decode received bytes into a `SignedEnvelope`, refusing anything non-canonical.

    Checks, in this order (SPEC §2.5): size, msgpack well-formedness, shape,
    version, kind, field types, field ranges, canonical form.

    Raises:
        DecodeError: `TOO_LARGE`, `MALFORMED`, `TRAILING_BYTES`, `UNKNOWN_VERSION`,
            `UNKNOWN_KIND`, `BAD_FIELD`, `OUT_OF_RANGE` or `NON_CANONICAL`.
    """
    if len(data) > max_bytes:
        raise DecodeError(Reason.TOO_LARGE, f"{len(data)} bytes > {max_bytes}")
    envelope = _fast_envelope(data)
    if envelope is not None:
        return envelope
    # Refused by the fast path: the reference decoder names the reason (or, if
    # the fast path were ever stricter than the records, accepts after all).
    return _decode_envelope_reference(data)


def _fast_envelope(data: bytes) -> SignedEnvelope | None:
    """The envelope `data` decodes to if it is valid, else None; never raises.

    The records' constructors check every field and then `decode_envelope`
    re-checks nothing: three records built field by field cost a tenth of the
    Ed25519 check that follows (issue 28). Here the same rules (SPEC §2.5
    steps 3-8) run straight on what msgpack returned, and the records are
    built with their slots set directly. It says only yes or no: the reason,
    and which defect comes first, are `_decode_envelope_reference`'s.
    """
    try:
        decoded = unpack(data)
    except DecodeError:
        return None
    if type(decoded) is not tuple or len(decoded) != 2:
        return None
    fields, signature = decoded
    if not (
        type(fields) is tuple
        and len(fields) >= 8  # no kind has fewer fields
        and type(fields[0]) is int
        and fields[0] == FORMAT_VERSION
        and type(signature) is bytes
        and len(signature) == SIGNATURE_BYTES
    ):
        return None
    statement = checked_statement(fields)
    if statement is None:
        return None
    try:
        _check_body(fields[2], fields[3], fields[4], statement)
    except FieldError:
        return None
    if pack(decoded) != data:  # the canonical form, last (step 8)
        return None
    return _built_envelope(fields, statement, signature, data)


def _built_envelope(
    fields: _Fields, statement: Statement, signature: bytes, data: bytes
) -> SignedEnvelope:
    """The records of fields `_fast_envelope` has checked, built without re-checking."""
    body = object.__new__(AttestationBody)
    set_issuer, set_issued_at_ms, set_expires_at_ms, set_statement = _BODY_SET
    set_issuer(body, fields[2])
    set_issued_at_ms(body, fields[3])
    set_expires_at_ms(body, fields[4])
    set_statement(body, statement)
    envelope = object.__new__(SignedEnvelope)
    set_body, set_signature, set_data = _ENVELOPE_SET
    set_body(envelope, body)
    set_signature(envelope, signature)
    set_data(envelope, data if type(data) is bytes else bytes(data))
    return envelope


def _decode_envelope_reference(data: bytes) -> SignedEnvelope:
    """`decode_envelope` through the records' constructors: the definition.

    They check each field in __post_init__, one definition of valid for
    decoded and locally built records alike, and raise the reason SPEC §2.5
    names; `_fast_envelope` must accept exactly what this accepts, with the
    same value (tests/protocol/test_fast_decode.py).

    Raises:
        DecodeError: as `decode_envelope`, but for `TOO_LARGE`.
    """
    decoded = unpack(data)
    fields, signature = _split_envelope(decoded)
    try:
        body = _decode_body(fields)
        if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
            raise FieldError(Reason.BAD_FIELD, f"signature must be {SIGNATURE_BYTES} bytes")
        # The canonical form, last (step 8). Every field passed its checks and
        # the body holds them as decoded, so `encode_body(body)` is exactly
        # `pack(fields)`, and the whole envelope re-encodes to `pack(decoded)`:
        # one call into msgpack instead of rebuilding the body's fields in
        # Python (a tenth of decoding; tests/protocol check both agree).
        if pack(cast(Value, decoded)) != data:
            raise FieldError(Reason.NON_CANONICAL, "bytes are not the canonical encoding")
        return _checked_envelope(body, signature, bytes(data))
    except FieldError as exc:
        # The records check each field's type and range together, field by field;
        # SPEC §2.5 puts every type check (step 6) before any range check (step 7).
        # Only a refused value can be out of order, so only then do we look for a
        # type defect elsewhere: valid input pays nothing for the rule.
        defect = _type_defect(fields, signature) if exc.reason is Reason.OUT_OF_RANGE else None
        if defect is not None:
            raise DecodeError(Reason.BAD_FIELD, defect) from exc
        raise DecodeError(exc.reason, str(exc)) from exc


def _checked_envelope(body: AttestationBody, signature: bytes, data: bytes) -> SignedEnvelope:
    """A `SignedEnvelope` of bytes `decode_envelope` has just found canonical.

    `SignedEnvelope(...)` would check the canonical form again by re-encoding
    the body field by field; decoding has checked it already, in one call.
    """
    envelope = object.__new__(SignedEnvelope)
    object.__setattr__(envelope, "body", body)
    object.__setattr__(envelope, "signature", signature)
    object.__setattr__(envelope, "data", data)
    return envelope


def _split_envelope(obj: object) -> tuple[_Fields, object]:
    if type(obj) is not tuple or len(obj) != 2 or type(obj[0]) is not tuple or not obj[0]:
        raise DecodeError(Reason.MALFORMED, "an envelope is [body, signature]")
    fields: _Fields = obj[0]
    version = fields[0]
    if type(version) is not int:
        raise DecodeError(Reason.MALFORMED, "the body starts with an integer version")
    if version != FORMAT_VERSION:
        raise DecodeError(Reason.UNKNOWN_VERSION, f"version {version} (we speak 1)")
    return fields, obj[1]


def _decode_body(fields: _Fields) -> AttestationBody:
    code = fields[1] if len(fields) > 1 else None
    counts = _FIELD_COUNTS.get(code) if type(code) is int else None
    if counts is None:
        raise DecodeError(Reason.UNKNOWN_KIND, f"kind {code!r:.16}")
    if len(fields) not in counts:
        expected = " or ".join(map(str, counts))
        raise FieldError(Reason.BAD_FIELD, f"a body of kind {code} has {expected} fields")
    # The records check every field's type and range in __post_init__: one
    # definition of "valid" for decoded and locally built records alike.
    return AttestationBody(
        issuer=fields[2],
        issued_at_ms=fields[3],
        expires_at_ms=fields[4],
        statement=_STATEMENT_DECODERS[fields[1]](fields[_PREFIX_FIELDS:]),
    )


def _is_identity(value: object) -> bool:
    return type(value) is bytes and len(value) == 32


def _is_optional(value: object, check: Callable[[object], bool]) -> bool:
    return value is None or check(value)


def _is_int(value: object) -> bool:
    return type(value) is int  # not bool: msgpack's true is no integer


def _is_str(value: object) -> bool:
    return type(value) is str


def _is_commitment(value: object) -> bool:
    return type(value) is bytes and len(value) == 32


def _is_subject(value: object) -> bool:
    return _is_identity(value) or _is_str(value)


def _revoked_subject(target: object) -> Callable[[object], bool]:
    # A revocation's subject has the type of its target kind's subject; for a
    # target kind outside 1..3 (refused at step 7) either form passes step 6.
    identity_kinds = (Kind.TRUST.value, Kind.CERTIFY.value, Kind.PROFILE.value)
    return _is_identity if target in identity_kinds else _is_subject


def _type_defect(fields: tuple[object, ...], signature: object) -> str | None:
    """The first field of a body (of a known kind and field count) whose msgpack
    type or size is wrong: SPEC §2.5 step 6, on its own. None if there is none."""
    checks: list[tuple[str, Callable[[object], bool]]] = [
        ("issuer", _is_identity),
        ("issued_at_ms", _is_int),
        ("expires_at_ms", lambda v: _is_optional(v, _is_int)),
    ]
    code = fields[1]
    if code == Kind.TRUST.value:
        checks += [("subject", _is_identity), ("context", _is_str), ("value", _is_int)]
        checks += [("name", _is_str)]  # zip() stops at the fields present
    elif code == Kind.PROFILE.value:
        about = ("about", lambda v: _is_optional(v, _is_str))
        checks += [("subject", _is_identity), ("name", _is_str), about]
    elif code == Kind.CERTIFY.value:
        commitment = ("commitment", lambda v: _is_optional(v, _is_commitment))
        checks += [("subject", _is_identity), ("claim", _is_str), commitment]
    elif code == Kind.RATE.value:
        reference = ("reference", lambda v: _is_optional(v, _is_str))
        checks += [("subject", _is_subject), ("context", _is_str), ("value", _is_int), reference]
    else:
        subject = _revoked_subject(fields[_PREFIX_FIELDS])
        checks += [("target kind", _is_int), ("subject", subject), ("scope", _is_str)]
    for (name, check), value in zip(checks, fields[2:], strict=False):
        if not check(value):
            return f"{name} has the wrong type or size"
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return f"signature must be {SIGNATURE_BYTES} bytes"
    return None


def _decode_trust(fields: _Fields) -> Statement:
    subject, context, value, *named = fields
    # A ninth field is a name, and only a str is one: a nil there is `bad_field`,
    # not a second encoding of the unnamed trust (SPEC §3.2).
    if named and type(named[0]) is not str:
        raise FieldError(Reason.BAD_FIELD, "a trust's ninth field is a name (str)")
    return Trust(
        subject=subject,
        context=context,
        value=value,
        name=named[0] if named else None,
    )


def _decode_profile(fields: _Fields) -> Statement:
    subject, name, about = fields
    return Profile(subject=subject, name=name, about=about)


def _decode_certify(fields: _Fields) -> Statement:
    subject, claim, commitment = fields
    return Certify(
        subject=subject,
        claim=claim,
        commitment=commitment,
    )


def _decode_rate(fields: _Fields) -> Statement:
    subject, context, value, reference = fields
    return Rate(
        subject=subject,
        context=context,
        value=value,
        reference=reference,
    )


def _decode_revoke(fields: _Fields) -> Statement:
    target, subject, scope = fields
    if type(target) is not int:
        raise FieldError(Reason.BAD_FIELD, "revocation target kind must be an integer")
    target_kind = _TARGET_KINDS.get(target)
    if target_kind is None:
        raise FieldError(Reason.OUT_OF_RANGE, f"revocation target kind {target!r:.16}")
    return Revoke(target_kind=target_kind, subject=subject, scope=scope)


_STATEMENT_DECODERS = {
    Kind.TRUST.value: _decode_trust,
    Kind.CERTIFY.value: _decode_certify,
    Kind.RATE.value: _decode_rate,
    Kind.REVOKE.value: _decode_revoke,
    Kind.PROFILE.value: _decode_profile,
}


def verify_envelope(envelope: SignedEnvelope) -> Attestation:
    """Check the issuer's signature and return the verified `Attestation` (SPEC §4.2).

    Verification is libsodium's strict Ed25519: it refuses non-canonical `S`,
    non-canonical or small-order public keys and small-order `R`.

    Raises:
        VerificationError: `BAD_SIGNATURE`.
    """
    # signed_message(envelope), inline: this runs once per record received.
    # One join allocates once; `a + b + c` builds and drops a second string.
    signed = b"".join((envelope.signature, SIGNATURE_DOMAIN, envelope.data[_BODY_BYTES]))
    try:
        _crypto_sign_open(signed, envelope.body.issuer)
    except nacl.exceptions.BadSignatureError:
        raise VerificationError(Reason.BAD_SIGNATURE, "signature does not verify") from None
    return Attestation(envelope)


def signed_message(envelope: SignedEnvelope) -> tuple[bytes, bytes]:
    """What libsodium's `crypto_sign_open` checks for `envelope`: (signature ||
    domain || body, the issuer's public key) (SPEC §4.2)."""
    signed = b"".join((envelope.signature, SIGNATURE_DOMAIN, envelope.data[_BODY_BYTES]))
    return signed, envelope.body.issuer


def open_signed(messages: Sequence[tuple[bytes, bytes]]) -> bytes:
    """One byte per (signed message, key) of `signed_message`: 1 if it verifies, else 0.

    Plain bytes in and out, so it can run in another process (node/signatures)
    and pays no decoding there: the caller decoded the envelopes already.
    """
    verdicts = bytearray(len(messages))
    for n, (signed, key) in enumerate(messages):
        try:
            nacl.bindings.crypto_sign_open(signed, key)
        except nacl.exceptions.CryptoError:  # a bad signature, a key of the wrong size
            continue
        verdicts[n] = 1
    return bytes(verdicts)


def verified_by(envelopes: Sequence[SignedEnvelope], verdicts: bytes) -> list[Attestation]:
    """The envelopes whose verdict from `open_signed` is 1, as verified `Attestation`s.

    `verdicts` must be `open_signed` of `[signed_message(e) for e in envelopes]`,
    in that order, computed by this node (a worker process of its own): the
    result is the same as `verify_envelope` on each, minus the refused ones.

    Raises:
        LocalProtocolError: `verdicts` does not have one byte per envelope.
    """
    if len(verdicts) != len(envelopes):
        raise LocalProtocolError(f"{len(verdicts)} verdicts for {len(envelopes)} envelopes")
    return [Attestation(e) for e, ok in zip(envelopes, verdicts, strict=True) if ok == 1]


def decode_attestation(data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> Attestation:
    """Decode and verify in one step: `verify_envelope(decode_envelope(data))`.

    Raises:
        DecodeError: see `decode_envelope`.
        VerificationError: see `verify_envelope`.
    """
    return verify_envelope(decode_envelope(data, max_bytes=max_bytes))


def check_fresh(attestation: Attestation, *, now_ms: int, max_skew_ms: int) -> None:
    """Refuse an attestation issued too far in our future (SPEC §4.3).

    A clock a little ahead is an honest mistake, so the reason is benign: the
    same attestation may be accepted later, when our clock has caught up.

    Raises:
        VerificationError: `FROM_FUTURE` if `issued_at_ms > now_ms + max_skew_ms`.
    """
    if attestation.issued_at_ms > now_ms + max_skew_ms:
        ahead_ms = attestation.issued_at_ms - now_ms
        raise VerificationError(Reason.FROM_FUTURE, f"issued {ahead_ms} ms in our future")
