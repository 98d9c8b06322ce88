"""What an attestation says: the v1 statement kinds, their fields and slots.

A statement is the unsigned, issuer-independent part of an attestation (SPEC
§3): `Trust`, `Certify`, `Rate`, `Revoke` or `Profile`. Each validates its own fields when
constructed and raises `FieldError` with a reason, so that decoders and local
callers share one definition of "valid". This module also owns the `Slot` (the
key under which newer attestations replace older ones) and the salted
commitment used by frugal certifications. It knows nothing of signatures.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, NewType, TypeAlias

from protocol.codec import pack
from protocol.errors import FieldError, Reason
from protocol.identity import IDENTITY_BYTES, IdentityId
from protocol.label import (
    MAX_ABOUT_BYTES,
    MAX_ABOUT_CODE_POINTS,
    MAX_NAME_LABEL_BYTES,
    MAX_NAME_LABEL_CODE_POINTS,
    check_label,
    is_label,
)

__all__ = [
    "COMMITMENT_BYTES",
    "GENERAL_CONTEXT",
    "MAX_NAME_BYTES",
    "MAX_REFERENCE_BYTES",
    "MAX_THING_BYTES",
    "MAX_VALUE",
    "MIN_VALUE",
    "NAME_PATTERN",
    "PROFILE_SCOPE",
    "SALT_BYTES",
    "Certify",
    "Kind",
    "Profile",
    "Rate",
    "Revoke",
    "Slot",
    "SlotId",
    "Statement",
    "Subject",
    "Thing",
    "Trust",
    "checked_statement",
    "commit_claim_value",
    "is_commitment_opening",
]


class Kind(enum.IntEnum):
    """The statement kinds of v1, with their wire codes (SPEC §3.1)."""

    TRUST = 1
    CERTIFY = 2
    RATE = 3
    REVOKE = 4
    PROFILE = 5


Thing = NewType("Thing", str)
"""A rated thing that is not an identity, named by a URI (SPEC §3.2)."""

Subject: TypeAlias = IdentityId | Thing
SlotId = NewType("SlotId", bytes)

GENERAL_CONTEXT = "general"
MIN_VALUE = -100
MAX_VALUE = 100
MAX_NAME_BYTES = 64
MAX_THING_BYTES = 512
MAX_REFERENCE_BYTES = 256
COMMITMENT_BYTES = 32
SALT_BYTES = 32
# The one scope of a profile's slot: one profile per issuer (SPEC §3.2).
PROFILE_SCOPE = "profile"

# Names (contexts and claims) are lowercase ASCII so that one name has one
# encoding: no Unicode normalisation, no case folding (SPEC §3.2).
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._:/-]{0,63}")
# A URI with a lowercase scheme and only visible ASCII (RFC 3986 has no other).
_THING = re.compile(r"[a-z][a-z0-9+.-]*:[\x21-\x7e]+")
_REFERENCE = re.compile(r"[\x21-\x7e]+")
_SLOT_DOMAIN = b"trustnode/slot/v1\x00"
_COMMITMENT_DOMAIN = b"trustnode/commitment/v1\x00"


def _check_identity(value: object, field: str) -> None:
    if type(value) is not bytes or len(value) != IDENTITY_BYTES:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be {IDENTITY_BYTES} bytes")


def _check_name(value: object, field: str) -> None:
    if type(value) is not str:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be a string")
    if NAME_PATTERN.fullmatch(value) is None:
        raise FieldError(
            Reason.OUT_OF_RANGE,
            f"{field} must be 1 to 64 lowercase letters, digits and . _ : / -, "
            "starting with a letter or digit (SPEC §3.2)",
        )


def _check_value(value: object) -> None:
    if type(value) is not int:
        raise FieldError(Reason.BAD_FIELD, "value must be an integer")
    if not MIN_VALUE <= value <= MAX_VALUE:
        raise FieldError(Reason.OUT_OF_RANGE, f"value must be in {MIN_VALUE}..{MAX_VALUE}")


def _check_subject(value: object, *, things_allowed: bool) -> None:
    if type(value) is str and things_allowed:
        if len(value) > MAX_THING_BYTES or _THING.fullmatch(value) is None:
            raise FieldError(Reason.OUT_OF_RANGE, "a thing is a URI of visible ASCII, ≤ 512 bytes")
        return
    _check_identity(value, "subject")


def _check_name_label(value: object, field: str) -> None:
    check_label(
        value, field, max_code_points=MAX_NAME_LABEL_CODE_POINTS, max_bytes=MAX_NAME_LABEL_BYTES
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """ "I rely on `subject` in `context`": `value` > 0 vouches, < 0 distrusts (flags).

    `name`, when given, is what the issuer knows the subject by ("Grace from the
    bakery"): a label (SPEC §3.4). It is absent from the encoding when None, so a
    trust without one keeps the exact bytes and id it always had.
    """

    kind: ClassVar[Kind] = Kind.TRUST
    subject: IdentityId
    context: str = GENERAL_CONTEXT
    value: int
    name: str | None = None

    def __post_init__(self) -> None:
        _check_identity(self.subject, "subject")
        _check_name(self.context, "context")
        _check_value(self.value)
        if self.name is not None:
            _check_name_label(self.name, "name")

    @property
    def scope(self) -> str:
        """The slot's scope: the context."""
        return self.context


@dataclass(frozen=True, slots=True, kw_only=True)
class Certify:
    """ "I checked `claim` about `subject`", optionally committing to a private value."""

    kind: ClassVar[Kind] = Kind.CERTIFY
    subject: IdentityId
    claim: str
    commitment: bytes | None = None

    def __post_init__(self) -> None:
        _check_identity(self.subject, "subject")
        _check_name(self.claim, "claim")
        if self.commitment is not None and (
            type(self.commitment) is not bytes or len(self.commitment) != COMMITMENT_BYTES
        ):
            raise FieldError(Reason.BAD_FIELD, f"commitment must be {COMMITMENT_BYTES} bytes")

    @property
    def scope(self) -> str:
        """The slot's scope: the claim."""
        return self.claim


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """ "My exchange with `subject` went like `value`", optionally naming the exchange."""

    kind: ClassVar[Kind] = Kind.RATE
    subject: Subject
    context: str = GENERAL_CONTEXT
    value: int
    reference: str | None = None

    def __post_init__(self) -> None:
        _check_subject(self.subject, things_allowed=True)
        _check_name(self.context, "context")
        _check_value(self.value)
        if self.reference is not None:
            if type(self.reference) is not str:
                raise FieldError(Reason.BAD_FIELD, "reference must be a string")
            if len(self.reference) > MAX_REFERENCE_BYTES or not _REFERENCE.fullmatch(
                self.reference
            ):
                raise FieldError(Reason.OUT_OF_RANGE, "reference is visible ASCII, ≤ 256 bytes")

    @property
    def scope(self) -> str:
        """The slot's scope: the context."""
        return self.context


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoke:
    """Withdraws whatever the issuer said in the slot (`target_kind`, `subject`, `scope`).

    A revocation is a tombstone: every older attestation of the slot stays dead;
    only a newer one can fill the slot again (SPEC §5).
    """

    kind: ClassVar[Kind] = Kind.REVOKE
    target_kind: Kind
    subject: Subject
    scope: str

    def __post_init__(self) -> None:
        if type(self.target_kind) is not Kind or self.target_kind is Kind.REVOKE:
            raise FieldError(
                Reason.OUT_OF_RANGE, "target kind must be trust, certify, rate or profile"
            )
        _check_subject(self.subject, things_allowed=self.target_kind is Kind.RATE)
        _check_name(self.scope, "scope")
        if self.target_kind is Kind.PROFILE and self.scope != PROFILE_SCOPE:
            raise FieldError(Reason.OUT_OF_RANGE, "a profile's scope is 'profile'")


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """ "Call me `name`": the issuer's self-chosen display name (SPEC §3.2).

    A self-statement: `subject` must be the issuer (the body checks it), so each
    issuer has one profile slot and the newest profile wins. Only a name and an
    optional short `about` line, both labels (SPEC §3.4): frugality leaves out
    photos and addresses, and residence is what certified claims prove.
    """

    kind: ClassVar[Kind] = Kind.PROFILE
    subject: IdentityId
    name: str
    about: str | None = None

    def __post_init__(self) -> None:
        _check_identity(self.subject, "subject")
        _check_name_label(self.name, "name")
        if self.about is not None:
            limits = {"max_code_points": MAX_ABOUT_CODE_POINTS, "max_bytes": MAX_ABOUT_BYTES}
            check_label(self.about, "about", **limits)

    @property
    def scope(self) -> str:
        """The slot's scope: always `profile`."""
        return PROFILE_SCOPE


Statement: TypeAlias = Trust | Certify | Rate | Revoke | Profile


# --- The fast path of decoding (protocol.attestation.decode_envelope) -------------
#
# Building a statement through its constructor runs the dataclass __init__ and
# __post_init__: most of the Python work of decoding an attestation, a twentieth
# of an Ed25519 check. `checked_statement` applies the very rules of the
# __post_init__ methods above to a body's msgpack fields and sets the slots
# directly. It only answers "valid, and here it is" or "no" (None): the reasons,
# and their order (SPEC §2.5), stay with the constructors, which the decoder
# runs on whatever this refuses. A rule changed above must change here too;
# tests/protocol/test_fast_decode.py checks that both agree on any bytes.

_Set: TypeAlias = Callable[[object, object], None]
_new = object.__new__
_is_name = NAME_PATTERN.fullmatch
_is_thing = _THING.fullmatch
_is_reference = _REFERENCE.fullmatch


def _setters(cls: type, *names: str) -> tuple[_Set, ...]:
    # The slot descriptors' own setters: a frozen dataclass refuses setattr,
    # and object.__setattr__ costs three times as much per field.
    return tuple(cls.__dict__[name].__set__ for name in names)


_TRUST_SET = _setters(Trust, "subject", "context", "value", "name")
_CERTIFY_SET = _setters(Certify, "subject", "claim", "commitment")
_RATE_SET = _setters(Rate, "subject", "context", "value", "reference")
_REVOKE_SET = _setters(Revoke, "target_kind", "subject", "scope")
_PROFILE_SET = _setters(Profile, "subject", "name", "about")
_TARGET_KINDS = {int(kind): kind for kind in (Kind.TRUST, Kind.CERTIFY, Kind.RATE, Kind.PROFILE)}


def _is_name_label(value: object) -> bool:
    limits = MAX_NAME_LABEL_CODE_POINTS, MAX_NAME_LABEL_BYTES
    return is_label(value, max_code_points=limits[0], max_bytes=limits[1])


def _fast_trust(fields: tuple[object, ...]) -> Statement | None:
    if len(fields) == 8:
        _, _, _, _, _, subject, context, value = fields
        name = None
    else:
        _, _, _, _, _, subject, context, value, name = fields
        if not _is_name_label(name):
            return None
    if not (
        type(subject) is bytes
        and len(subject) == IDENTITY_BYTES
        and type(context) is str
        and _is_name(context) is not None
        and type(value) is int
        and MIN_VALUE <= value <= MAX_VALUE
    ):
        return None
    trust = _new(Trust)
    set_subject, set_context, set_value, set_name = _TRUST_SET
    set_subject(trust, subject)
    set_context(trust, context)
    set_value(trust, value)
    set_name(trust, name)
    return trust


def _fast_certify(fields: tuple[object, ...]) -> Statement | None:
    _, _, _, _, _, subject, claim, commitment = fields
    if not (
        type(subject) is bytes
        and len(subject) == IDENTITY_BYTES
        and type(claim) is str
        and _is_name(claim) is not None
        and (
            commitment is None
            or (type(commitment) is bytes and len(commitment) == COMMITMENT_BYTES)
        )
    ):
        return None
    certify = _new(Certify)
    set_subject, set_claim, set_commitment = _CERTIFY_SET
    set_subject(certify, subject)
    set_claim(certify, claim)
    set_commitment(certify, commitment)
    return certify


def _is_fast_subject(subject: object, *, things_allowed: bool) -> bool:
    """`_check_subject` as a bool."""
    if type(subject) is str and things_allowed:
        return len(subject) <= MAX_THING_BYTES and _is_thing(subject) is not None
    return type(subject) is bytes and len(subject) == IDENTITY_BYTES


def _fast_rate(fields: tuple[object, ...]) -> Statement | None:
    _, _, _, _, _, subject, context, value, reference = fields
    if not (
        _is_fast_subject(subject, things_allowed=True)
        and type(context) is str
        and _is_name(context) is not None
        and type(value) is int
        and MIN_VALUE <= value <= MAX_VALUE
        and (
            reference is None
            or (
                type(reference) is str
                and len(reference) <= MAX_REFERENCE_BYTES
                and _is_reference(reference) is not None
            )
        )
    ):
        return None
    rate = _new(Rate)
    set_subject, set_context, set_value, set_reference = _RATE_SET
    set_subject(rate, subject)
    set_context(rate, context)
    set_value(rate, value)
    set_reference(rate, reference)
    return rate


def _fast_revoke(fields: tuple[object, ...]) -> Statement | None:
    _, _, _, _, _, target, subject, scope = fields
    target_kind = _TARGET_KINDS.get(target) if type(target) is int else None
    if not (
        target_kind is not None
        and _is_fast_subject(subject, things_allowed=target_kind is Kind.RATE)
        and type(scope) is str
        and _is_name(scope) is not None
        and (target_kind is not Kind.PROFILE or scope == PROFILE_SCOPE)
    ):
        return None
    revoke = _new(Revoke)
    set_target_kind, set_subject, set_scope = _REVOKE_SET
    set_target_kind(revoke, target_kind)
    set_subject(revoke, subject)
    set_scope(revoke, scope)
    return revoke


def _fast_profile(fields: tuple[object, ...]) -> Statement | None:
    _, _, _, _, _, subject, name, about = fields
    if not (
        type(subject) is bytes
        and len(subject) == IDENTITY_BYTES
        and _is_name_label(name)
        and (
            about is None
            or is_label(about, max_code_points=MAX_ABOUT_CODE_POINTS, max_bytes=MAX_ABOUT_BYTES)
        )
    ):
        return None
    profile = _new(Profile)
    set_subject, set_name, set_about = _PROFILE_SET
    set_subject(profile, subject)
    set_name(profile, name)
    set_about(profile, about)
    return profile


_FAST_BUILDERS: dict[object, tuple[Callable[[tuple[object, ...]], Statement | None], int, int]]
# Keyed by the wire code; the field counts (with the body's five common fields)
# each kind allows, as in protocol.attestation (SPEC §3.2).
_FAST_BUILDERS = {
    Kind.TRUST.value: (_fast_trust, 8, 9),
    Kind.CERTIFY.value: (_fast_certify, 8, 8),
    Kind.RATE.value: (_fast_rate, 9, 9),
    Kind.REVOKE.value: (_fast_revoke, 8, 8),
    Kind.PROFILE.value: (_fast_profile, 8, 8),
}


def checked_statement(fields: tuple[object, ...]) -> Statement | None:
    """The statement of a body's msgpack fields, if they make a valid one, else None.

    `fields` is the whole body (version, kind, issuer, times, then the
    statement's fields). Only the statement's own rules are checked here: the
    body's (issuer, times, a profile about its issuer) are the caller's. Never
    raises; says nothing of why it refuses (the constructors do, SPEC §2.5).
    """
    code = fields[1] if len(fields) > 1 else None
    # `type(...) is int` first: msgpack's true equals 1, and a map is unhashable.
    entry = _FAST_BUILDERS.get(code) if type(code) is int else None
    if entry is None:
        return None
    build, fewest, most = entry
    if not fewest <= len(fields) <= most:
        return None
    return build(fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class Slot:
    """Where attestations replace each other: (issuer, kind, subject, scope) (SPEC §5.1).

    A revocation lives in the slot of what it revokes, so `kind` is never REVOKE.
    """

    issuer: IdentityId
    kind: Kind
    subject: Subject
    scope: str
    id: SlotId = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # BLAKE2b-256 of the slot's canonical encoding: a fixed-size index key.
        # Computed once: stores, engines and gossip ask for it again and again.
        encoded = pack((self.issuer, int(self.kind), self.subject, self.scope))
        slot_id = SlotId(hashlib.blake2b(_SLOT_DOMAIN + encoded, digest_size=32).digest())
        object.__setattr__(self, "id", slot_id)


def commit_claim_value(*, subject: IdentityId, claim: str, value: bytes, salt: bytes) -> bytes:
    """The salted commitment to a private `value` behind a certified claim (SPEC §3.3).

    The certifier publishes only this hash; the subject keeps `value` and `salt`
    and may later open the commitment to someone of their choice. Binding the
    subject and claim stops an opening being replayed for another claim.

    Raises:
        FieldError: `BAD_FIELD` if the salt is not 32 bytes.
    """
    if type(salt) is not bytes or len(salt) != SALT_BYTES:
        raise FieldError(Reason.BAD_FIELD, f"salt must be {SALT_BYTES} bytes")
    _check_name(claim, "claim")
    claim_bytes = claim.encode("ascii")
    material = _COMMITMENT_DOMAIN + salt + subject + bytes([len(claim_bytes)]) + claim_bytes + value
    return hashlib.blake2b(material, digest_size=COMMITMENT_BYTES).digest()


def is_commitment_opening(certify: Certify, *, value: bytes, salt: bytes) -> bool:
    """Whether (`value`, `salt`) opens the commitment of `certify`; never raises."""
    if certify.commitment is None or type(salt) is not bytes or len(salt) != SALT_BYTES:
        return False
    expected = commit_claim_value(
        subject=certify.subject, claim=certify.claim, value=value, salt=salt
    )
    return hmac.compare_digest(expected, certify.commitment)
