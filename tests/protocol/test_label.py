"""Labels (SPEC §3.4), profiles and named trusts (SPEC §3.2): rules and codec properties."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.attestation import (
    Attestation,
    AttestationBody,
    decode_attestation,
    is_naming_envelope,
    sign_attestation,
)
from protocol.errors import FieldError, Reason
from protocol.label import (
    MAX_NAME_LABEL_BYTES,
    MAX_NAME_LABEL_CODE_POINTS,
    REFUSED_CATEGORIES,
    check_label,
    is_label,
)
from protocol.statement import Kind, Profile, Revoke, Trust
from protocol.supersession import resolve_slot
from tests.strategies import KEYS, attestations, labels

_LIMITS = {"max_code_points": MAX_NAME_LABEL_CODE_POINTS, "max_bytes": MAX_NAME_LABEL_BYTES}
ALICE, BOB = KEYS[0], KEYS[1]


@given(st.text(max_size=200))
def test_any_text_is_a_label_or_refused_typed(text: str) -> None:
    if not is_label(text, **_LIMITS):
        with pytest.raises(FieldError) as info:
            check_label(text, "name", **_LIMITS)
        assert info.value.reason is Reason.OUT_OF_RANGE
        return
    # What passes holds nothing a reader cannot see, and has one encoding.
    assert unicodedata.normalize("NFC", text) == text
    assert all(unicodedata.category(c) not in REFUSED_CATEGORIES for c in text)
    assert text == text.strip()
    assert 0 < len(text.encode()) <= MAX_NAME_LABEL_BYTES


@given(labels())
def test_generated_labels_are_labels(text: str) -> None:
    assert is_label(text, **_LIMITS)


@pytest.mark.parametrize("value", [b"Grace", 7, None, ("G",)])
def test_a_label_is_a_str(value: object) -> None:
    with pytest.raises(FieldError) as info:
        check_label(value, "name", **_LIMITS)
    assert info.value.reason is Reason.BAD_FIELD


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x" * 10_000,
        "é" * 65,  # 65 code points
        "\U0001f33b" * 33,  # 33 code points, 132 bytes
        "Zoe\u0301",  # NFD
        "Grace\u202e",  # right-to-left override
        "Grace\u2067",  # right-to-left isolate
        "Gr\u200dace",  # zero-width joiner
        "\ufeffGrace",  # byte-order mark
        "Grace\x1b[2J",  # a terminal escape
        "Grace\tHopper",
        "Grace\u3000Hopper",  # ideographic space
        " Grace",
        "Grace ",
        "\ud800",  # a lone surrogate
        "Grace\U000e0041",  # a tag character
    ],
)
def test_hostile_labels_are_refused(text: str) -> None:
    assert not is_label(text, **_LIMITS)


@pytest.mark.parametrize(
    "text", ["Grace", "Zoë", "Grace (rue des Lilas)", "李小龙", "Грейс", "<b>"]
)
def test_ordinary_names_are_labels(text: str) -> None:
    # Markup is inert text to the protocol: views escape it (STYLE §11).
    assert is_label(text, **_LIMITS)


def _body(statement: Profile | Revoke | Trust, at_ms: int) -> AttestationBody:
    return AttestationBody(issuer=ALICE.identity, issued_at_ms=at_ms, statement=statement)


@given(labels(), st.none() | labels())
def test_profile_round_trips(name: str, about: str | None) -> None:
    body = _body(Profile(subject=ALICE.identity, name=name, about=about), 1)
    attestation = sign_attestation(body, ALICE)
    assert decode_attestation(attestation.data) == attestation


@given(labels())
def test_named_trust_round_trips_and_differs_from_unnamed(name: str) -> None:
    named = sign_attestation(_body(Trust(subject=BOB.identity, value=50, name=name), 1), ALICE)
    plain = sign_attestation(_body(Trust(subject=BOB.identity, value=50), 1), ALICE)
    assert decode_attestation(named.data) == named
    # Same slot: a newer vouch with or without a name replaces the older.
    assert named.slot == plain.slot
    assert plain.data[1] == 0x98  # fixarray(8)
    assert named.data[1] == 0x99  # fixarray(9)


def test_a_profile_is_about_its_issuer() -> None:
    with pytest.raises(FieldError) as info:
        _body(Profile(subject=BOB.identity, name="Bob"), 1)
    assert info.value.reason is Reason.OUT_OF_RANGE
    with pytest.raises(FieldError):
        _body(Revoke(target_kind=Kind.PROFILE, subject=BOB.identity, scope="profile"), 1)
    with pytest.raises(FieldError):
        Revoke(target_kind=Kind.PROFILE, subject=ALICE.identity, scope="general")


def test_one_profile_slot_per_issuer_newest_wins_and_revocable() -> None:
    old = sign_attestation(_body(Profile(subject=ALICE.identity, name="Al"), 1), ALICE)
    new = sign_attestation(_body(Profile(subject=ALICE.identity, name="Alice"), 2), ALICE)
    gone = sign_attestation(
        _body(Revoke(target_kind=Kind.PROFILE, subject=ALICE.identity, scope="profile"), 3), ALICE
    )
    assert old.slot == new.slot == gone.slot
    assert resolve_slot([old, new], now_ms=10) == new
    assert resolve_slot([new, gone, old], now_ms=10) is None


@given(attestations())
def test_naming_envelopes_are_told_from_their_bytes(attestation: Attestation) -> None:
    statement = attestation.statement
    naming = (
        isinstance(statement, Profile)
        or (isinstance(statement, Trust) and statement.name is not None)
        or (isinstance(statement, Revoke) and statement.target_kind is Kind.PROFILE)
    )
    assert is_naming_envelope(attestation.data) is naming
