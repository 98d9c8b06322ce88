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


# --- The field rules: one table read by the constructors and by the decoder --
#
# Each rule checks one field and raises `FieldError` with its reason (SPEC
# §2.5: `BAD_FIELD` for a wrong type or size, `OUT_OF_RANGE` for a value out of
# bounds). The records' __post_init__ run their kind's rules in table order;
# `checked_statement` (the fast path of `protocol.envelope_decoding`) runs the
# very same rules on a body's msgpack fields. A rule changed here changes both.

_Check: TypeAlias = Callable[[object, str], None]
# (field, check, whether None may stand for "absent"): an absent optional field
# is not checked at all, so most records pay for the fields they carry only.
_Rules: TypeAlias = tuple[tuple[str, _Check, bool], ...]
_is_name = NAME_PATTERN.fullmatch
_is_thing = _THING.fullmatch
_is_reference = _REFERENCE.fullmatch


def _check_identity(value: object, field: str) -> None:
    if type(value) is not bytes or len(value) != IDENTITY_BYTES:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be {IDENTITY_BYTES} bytes")


def _check_name(value: object, field: str) -> None:
    if type(value) is not str:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be a string")
    if _is_name(value) is None:
        raise FieldError(
            Reason.OUT_OF_RANGE,
            f"{field} must be 1 to 64 lowercase letters, digits and . _ : / -, "
            "starting with a letter or digit (SPEC §3.2)",
        )


def _check_value(value: object, field: str) -> None:
    if type(value) is not int:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be an integer")
    if not MIN_VALUE <= value <= MAX_VALUE:
        raise FieldError(Reason.OUT_OF_RANGE, f"{field} must be in {MIN_VALUE}..{MAX_VALUE}")


def _check_thing_or_identity(value: object, field: str) -> None:
    if type(value) is str:
        if len(value) > MAX_THING_BYTES or _is_thing(value) is None:
            raise FieldError(Reason.OUT_OF_RANGE, "a thing is a URI of visible ASCII, ≤ 512 bytes")
        return
    _check_identity(value, field)


def _check_commitment(value: object, field: str) -> None:
    if type(value) is not bytes or len(value) != COMMITMENT_BYTES:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be {COMMITMENT_BYTES} bytes")


def _check_reference(value: object, field: str) -> None:
    if type(value) is not str:
        raise FieldError(Reason.BAD_FIELD, f"{field} must be a string")
    if len(value) > MAX_REFERENCE_BYTES or _is_reference(value) is None:
        raise FieldError(Reason.OUT_OF_RANGE, f"{field} is visible ASCII, ≤ 256 bytes")


def _check_name_label(value: object, field: str) -> None:
    check_label(
        value, field, max_code_points=MAX_NAME_LABEL_CODE_POINTS, max_bytes=MAX_NAME_LABEL_BYTES
    )


def _check_about(value: object, field: str) -> None:
    check_label(value, field, max_code_points=MAX_ABOUT_CODE_POINTS, max_bytes=MAX_ABOUT_BYTES)


def _check_profile_scope(value: object, field: str) -> None:
    _check_name(value, field)
    if value != PROFILE_SCOPE:
        raise FieldError(Reason.OUT_OF_RANGE, "a profile's scope is 'profile'")


def _check_subject(value: object, *, things_allowed: bool) -> None:
    (_check_thing_or_identity if things_allowed else _check_identity)(value, "subject")


# Field order = the record's fields = the body's fields after the common five.
_TRUST_RULES: _Rules = (
    ("subject", _check_identity, False),
    ("context", _check_name, False),
    ("value", _check_value, False),
    ("name", _check_name_label, True),
)
_CERTIFY_RULES: _Rules = (
    ("subject", _check_identity, False),
    ("claim", _check_name, False),
    ("commitment", _check_commitment, True),
)
_RATE_RULES: _Rules = (
    ("subject", _check_thing_or_identity, False),
    ("context", _check_name, False),
    ("value", _check_value, False),
    ("reference", _check_reference, True),
)
_PROFILE_RULES: _Rules = (
    ("subject", _check_identity, False),
    ("name", _check_name_label, False),
    ("about", _check_about, True),
)
# A revocation's rules after its target kind, by target kind: the keys are the
# kinds a revocation may target, its subject has the target's subject's form,
# and a profile's scope is fixed.
_REVOKE_RULES: dict[Kind, _Rules] = {
    Kind.TRUST: (("subject", _check_identity, False), ("scope", _check_name, False)),
    Kind.CERTIFY: (("subject", _check_identity, False), ("scope", _check_name, False)),
    Kind.RATE: (("subject", _check_thing_or_identity, False), ("scope", _check_name, False)),
    Kind.PROFILE: (("subject", _check_identity, False), ("scope", _check_profile_scope, False)),
}


def _check_target_kind(value: object) -> _Rules:
    """The rules of the rest of a revocation of target kind `value`."""
    rules = _REVOKE_RULES.get(value) if type(value) is Kind else None
    if rules is None:
        raise FieldError(Reason.OUT_OF_RANGE, "target kind must be trust, certify, rate or profile")
    return rules


def _check_record(record: object, rules: _Rules) -> None:
    for name, check, optional in rules:
        value = getattr(record, name)
        if value is not None or not optional:
            check(value, name)


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
        _check_record(self, _TRUST_RULES)

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
        _check_record(self, _CERTIFY_RULES)

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
        _check_record(self, _RATE_RULES)

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
        _check_record(self, _check_target_kind(self.target_kind))


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
        _check_record(self, _PROFILE_RULES)

    @property
    def scope(self) -> str:
        """The slot's scope: always `profile`."""
        return PROFILE_SCOPE


Statement: TypeAlias = Trust | Certify | Rate | Revoke | Profile


# --- The fast path of decoding (protocol.envelope_decoding) ----------------------
#
# Building a statement through its constructor runs the dataclass __init__ and
# __post_init__: keyword arguments, a frozen object.__setattr__ per field.
# `checked_statement` runs the same rule table on a body's msgpack fields and
# sets the slots directly. It only answers "valid, and here it is" or "no"
# (None): the reasons, and their order (SPEC §2.5), stay with the reference
# decoder, which runs on whatever this refuses. tests/protocol/test_fast_decode.py
# checks that both agree on any bytes.

_Set: TypeAlias = Callable[[object, object], None]
_new = object.__new__


def _setters(cls: type, names: tuple[str, ...]) -> tuple[_Set, ...]:
    # The slot descriptors' own setters: a frozen dataclass refuses setattr,
    # and object.__setattr__ costs three times as much per field.
    return tuple(cls.__dict__[name].__set__ for name in names)


_Shape: TypeAlias = tuple[type, _Rules, tuple[_Set, ...], int]


def _shape(cls: type, rules: _Rules) -> _Shape:
    # Only a kind's last field may be optional (and left out of the body when
    # absent, SPEC §3.2): the fast path below relies on it.
    assert not any(optional for _, _, optional in rules[:-1])
    return cls, rules, _setters(cls, tuple(rule[0] for rule in rules)), 5 + len(rules)


# Keyed by the wire code (plain int lookups: hashing an enum member costs more).
_SHAPES: dict[int, _Shape] = {
    Kind.TRUST.value: _shape(Trust, _TRUST_RULES),
    Kind.CERTIFY.value: _shape(Certify, _CERTIFY_RULES),
    Kind.RATE.value: _shape(Rate, _RATE_RULES),
    Kind.PROFILE.value: _shape(Profile, _PROFILE_RULES),
}
_REVOKE_SET = _setters(Revoke, ("target_kind", "subject", "scope"))
_TARGET_KINDS = {kind.value: kind for kind in _REVOKE_RULES}
# Only a trust's last field may be left out of its body; the others always
# encode theirs, as nil when absent.
_SHORTENED = frozenset({Kind.TRUST.value})


def checked_statement(fields: tuple[object, ...]) -> Statement | None:
    """The statement of a body's msgpack fields, if they make a valid one, else None.

    `fields` is the whole body (version, kind, issuer, times, then the
    statement's fields). Only the statement's own rules are checked here: the
    body's (issuer, times, a profile about its issuer) are the caller's. Never
    raises; says nothing of why it refuses (the reference decoder does, SPEC §2.5).
    """
    code = fields[1] if len(fields) > 1 else None
    # `type(...) is int` first: msgpack's true equals 1, and a map is unhashable.
    if type(code) is not int:
        return None
    try:
        if code == Kind.REVOKE.value:
            return _checked_revoke(fields)
        shape = _SHAPES.get(code)
        if shape is None:
            return None
        return _checked_record(shape, fields, shortened=code in _SHORTENED)
    except FieldError:
        return None


def _checked_record(
    shape: _Shape, fields: tuple[object, ...], *, shortened: bool
) -> Statement | None:
    """`checked_statement` of a kind of `_SHAPES`: the table's rules, unrolled.

    The rules are called one by one, not in a loop: a loop over three or four
    fields costs as much as the checks themselves (measured, issue 28).

    Raises:
        FieldError: a rule refused a field.
    """
    cls, rules, setters, most = shape
    count = len(fields)
    if count == most:
        last = fields[-1]
        # Left out when absent, so present means non-nil: nil there would be
        # a second encoding of the record without it.
        if shortened and last is None:
            return None
    elif shortened and count == most - 1:
        last = None
    else:
        return None
    statement: Statement = _new(cls)
    if most == 9:
        (name_0, check_0, _), (name_1, check_1, _), (name_2, check_2, _), last_rule = rules
        check_0(fields[5], name_0)
        check_1(fields[6], name_1)
        check_2(fields[7], name_2)
        set_0, set_1, set_2, set_last = setters
        set_2(statement, fields[7])
    else:
        (name_0, check_0, _), (name_1, check_1, _), last_rule = rules
        check_0(fields[5], name_0)
        check_1(fields[6], name_1)
        set_0, set_1, set_last = setters
    last_name, check_last, optional = last_rule
    if last is not None or not optional:
        check_last(last, last_name)
    set_0(statement, fields[5])
    set_1(statement, fields[6])
    set_last(statement, last)
    return statement


def _checked_revoke(fields: tuple[object, ...]) -> Statement | None:
    """`checked_statement` of a revocation: its rules follow from its target kind."""
    if len(fields) != 8:
        return None
    _, _, _, _, _, target, subject, scope = fields
    target_kind = _TARGET_KINDS.get(target) if type(target) is int else None
    if target_kind is None:
        return None
    (subject_name, check_subject, _), (scope_name, check_scope, _) = _REVOKE_RULES[target_kind]
    check_subject(subject, subject_name)
    check_scope(scope, scope_name)
    revoke = _new(Revoke)
    set_target_kind, set_subject, set_scope = _REVOKE_SET
    set_target_kind(revoke, target_kind)
    set_subject(revoke, subject)
    set_scope(revoke, scope)
    return revoke


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
