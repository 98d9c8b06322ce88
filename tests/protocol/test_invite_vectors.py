"""The code against the published vectors in protocol/vectors/invites-v1.json (SPEC §12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.net.addresses import is_dialable
from protocol.codec import pack
from protocol.errors import RemoteProtocolError, VerificationError
from protocol.identity import IdentityKey, encode_identity_text
from protocol.invite import check_invite, decode_invite, sign_invite
from tests.vectors.invite_vectors import VECTORS_PATH, build_vectors
from tests.vectors.vector_file import render

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def test_file_is_what_the_builder_makes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


def test_vector_file_covers_every_reason() -> None:
    assert {v["reason"] for v in VECTORS["negative"]} == {
        "bad_text", "malformed", "trailing_bytes", "unknown_version", "bad_field",
        "out_of_range", "non_canonical", "bad_signature",
    }  # fmt: skip
    assert max(len(v["bootstrap"]) for v in VECTORS["positive"]) == 8


@pytest.mark.parametrize("vector", VECTORS["positive"], ids=lambda v: v["name"])
def test_positive_vector(vector: dict[str, Any]) -> None:
    invite = decode_invite(vector["code"])
    assert invite.inviter.hex() == vector["inviter_hex"]
    assert encode_identity_text(invite.inviter) == vector["inviter_text"]
    assert invite.community_id.hex() == vector["community_id_hex"]
    key = invite.community_key
    assert (None if key is None else key.hex()) == vector["community_key_hex"]
    assert invite.key.hex() == vector["key_hex"]
    assert list(invite.bootstrap) == vector["bootstrap"]
    assert invite.expires_at_ms == vector["expires_at_ms"]
    assert (None if invite.nonce is None else invite.nonce.hex()) == vector["nonce_hex"]
    assert pack(invite._fields()).hex() == vector["body_hex"]
    signer = IdentityKey.from_seed(bytes.fromhex(vector["inviter_seed_hex"]))
    assert sign_invite(invite, signer) == vector["code"]  # Ed25519 is deterministic
    assert [a for a in invite.bootstrap if is_dialable(a, local=True)] == vector["dialable"]


@pytest.mark.parametrize("vector", VECTORS["negative"], ids=lambda v: v["name"])
def test_negative_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_invite(vector["code"])
    assert info.value.reason.value == vector["reason"]


@pytest.mark.parametrize("vector", VECTORS["expiry"], ids=lambda v: v["result"])
def test_expiry_vector(vector: dict[str, Any]) -> None:
    invite = decode_invite(vector["code"])
    if vector["result"] == "ok":
        check_invite(invite, now_ms=vector["now_ms"])
        return
    with pytest.raises(VerificationError) as info:
        check_invite(invite, now_ms=vector["now_ms"])
    assert info.value.reason.value == vector["result"]
