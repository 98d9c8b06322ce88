"""Invites: signed, strict, expiring codes (SPEC §12)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import DecodeError, FieldError, Reason, RemoteProtocolError, VerificationError
from protocol.identity import IdentityKey
from protocol.invite import (
    Invite,
    check_invite,
    decode_invite,
    encode_invite,
    open_community_key,
    sign_invite,
)

ALICE, BOB = IdentityKey.from_seed(bytes([1]) * 32), IdentityKey.from_seed(bytes([2]) * 32)


def invite(**overrides: object) -> Invite:
    fields: dict[str, object] = {
        "community_id": bytes(range(32)),
        "community_key": bytes([7]) * 32,
        "bootstrap": ("127.0.0.1:7400", "[::1]:7400", "node.example.org:1"),
        "inviter": ALICE.identity,
        "expires_at_ms": 2_000,
        "nonce": bytes(16),
    }
    fields.update(overrides)
    return Invite(**fields)  # type: ignore[arg-type]


def test_round_trip_and_open_communities() -> None:
    closed = invite()
    assert decode_invite(sign_invite(closed, ALICE)) == closed
    assert closed.key == bytes([7]) * 32
    opened = invite(community_key=None, nonce=None, expires_at_ms=None)
    code = sign_invite(opened, ALICE)
    assert code.startswith("tninvite1_")
    assert decode_invite("  " + code + "\n") == opened
    assert opened.key == open_community_key(opened.community_id)


def test_expiry() -> None:
    check_invite(invite(), now_ms=1_999)
    with pytest.raises(VerificationError) as info:
        check_invite(invite(), now_ms=2_000)
    assert info.value.reason is Reason.EXPIRED


@given(st.data())
def test_any_edit_of_the_code_is_refused(data: st.DataObject) -> None:
    code = sign_invite(invite(), ALICE)
    index = data.draw(st.integers(len("tninvite1_"), len(code) - 1))
    char = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"))
    edited = code[:index] + char + code[index + 1 :]
    if edited == code:
        return
    with pytest.raises(RemoteProtocolError):
        decode_invite(edited)


@given(st.text(max_size=300))
def test_any_text_decodes_or_fails_typed(text: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_invite("tninvite1_" + text)


def test_forged_inviter_is_refused() -> None:
    claimed = invite(inviter=BOB.identity)
    body_code = sign_invite(claimed, BOB)
    assert decode_invite(body_code).inviter == BOB.identity
    with pytest.raises(FieldError):
        sign_invite(claimed, ALICE)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hello", Reason.BAD_TEXT),
        ("tninvite1_", Reason.BAD_TEXT),
        ("tninvite1_ABC", Reason.BAD_TEXT),
        (encode_invite(b"\xc1"), Reason.MALFORMED),
        (encode_invite(b"\x92\xc4\x01x\xc4\x01y"), Reason.BAD_FIELD),
    ],
)
def test_bad_codes(text: str, reason: Reason) -> None:
    with pytest.raises(DecodeError) as info:
        decode_invite(text)
    assert info.value.reason is reason


@pytest.mark.parametrize(
    "overrides",
    [
        {"bootstrap": ()},
        {"bootstrap": ("no-port",)},
        {"bootstrap": ("host:70000",)},
        {"bootstrap": ("a b:1",)},
        {"community_id": b"short"},
        {"nonce": b"short"},
        {"expires_at_ms": -1},
    ],
)
def test_invalid_invites_cannot_be_built(overrides: dict[str, object]) -> None:
    with pytest.raises(FieldError):
        invite(**overrides)
