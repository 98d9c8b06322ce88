"""Decoding received bytes into a `SignedEnvelope`, refusing anything non-canonical.

This module owns `decode_envelope` (SPEC §2.5): a fast path that runs the
records' own rule tables straight on msgpack's output, and the reference
decoder (the records' constructors) that names the reason for whatever the
fast path refuses. It never checks a signature (`protocol.attestation` does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, cast

from protocol.attestation_records import (
    _BODY_SET,
    _ENVELOPE_SET,
    FORMAT_VERSION,
    MAX_ENVELOPE_BYTES,
    AttestationBody,
    SignedEnvelope,
    _check_body,
)
from protocol.codec import Value, pack, unpack
from protocol.errors import (
    DecodeError,
    FieldError,
    Reason,
)
from protocol.identity import SIGNATURE_BYTES
from protocol.statement import (
    Certify,
    Kind,
    Profile,
    Rate,
    Revoke,
    Statement,
    Trust,
    checked_statement,
)

__all__ = ["decode_envelope"]

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
# A body's fields as msgpack decoded them, unchecked: the records check each
# one's type in __post_init__ (one definition of valid). `Any`, not `object`,
# so that no `cast` call (a real call, on every field of every record) names
# the types those checks are about to enforce.
_Fields: TypeAlias = tuple[Any, ...]


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
