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
