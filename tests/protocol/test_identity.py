"""Identities and their text form (SPEC §1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import DecodeError, LocalProtocolError, Reason
from protocol.identity import (
    IdentityId,
    IdentityKey,
    decode_identity,
    decode_identity_text,
    encode_identity_text,
    is_valid_public_key,
    short_identity_text,
)

_ids = st.binary(min_size=32, max_size=32).map(IdentityId)


@given(_ids)
def test_text_round_trip(identity: IdentityId) -> None:
    text = encode_identity_text(identity)
    assert len(text) == 61
    assert text.startswith("tn_")
    assert decode_identity_text(text) == identity


@given(st.text(max_size=80))
def test_any_text_decodes_or_fails_typed(text: str) -> None:
    try:
        identity = decode_identity_text(text)
    except DecodeError as exc:
        reason: Reason | None = exc.reason
    else:
        reason = None
        assert encode_identity_text(identity) == text
    assert reason in {None, Reason.BAD_TEXT, Reason.BAD_CHECKSUM}


@given(_ids, st.integers(3, 60), st.sampled_from("abcdefghijklmnopqrstuvwxyz234567"))
def test_any_single_substitution_is_caught(identity: IdentityId, index: int, char: str) -> None:
    text = encode_identity_text(identity)
    changed = text[:index] + char + text[index + 1 :]
    if changed == text:
        return
    with pytest.raises(DecodeError):
        decode_identity_text(changed)


def test_key_from_seed_is_deterministic_and_hides_secret() -> None:
    key = IdentityKey.from_seed(bytes(32))
    assert key.identity == IdentityKey.from_seed(bytes(32)).identity
    assert key.seed.hex() not in repr(key)
    assert short_identity_text(key.identity) in repr(key)
    assert is_valid_public_key(key.identity)
    assert not is_valid_public_key(IdentityId(bytes([1]) + bytes(31)))


def test_generated_keys_differ_and_sign() -> None:
    first, second = IdentityKey.generate(), IdentityKey.generate()
    assert first.identity != second.identity
    assert len(first.sign(b"message")) == 64


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "x" * 32])
def test_bad_seed_is_local_error(seed: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        IdentityKey.from_seed(seed)


@pytest.mark.parametrize("data", [b"", bytes(31), bytes(33)])
def test_decode_identity_checks_length(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode_identity(data)
    assert info.value.reason is Reason.BAD_FIELD
    assert decode_identity(bytes(32)) == bytes(32)
