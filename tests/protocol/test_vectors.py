"""The code against the published vectors in protocol/vectors/attestations-v1.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from protocol.attestation import (
    check_fresh,
    decode_attestation,
    decode_envelope,
    encode_body,
    sign_attestation,
    verify_envelope,
)
from protocol.errors import DecodeError, RemoteProtocolError, VerificationError
from protocol.identity import IdentityId, IdentityKey, decode_identity_text, encode_identity_text
from protocol.statement import Certify, commit_claim_value, is_commitment_opening
from protocol.supersession import resolve_slot, slot_head
from tests.vectors.attestation_vectors import VECTORS_PATH, build_vectors
from tests.vectors.vector_file import render

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def test_file_is_what_the_builder_makes() -> None:
    # A stale file would publish vectors the code no longer agrees with.
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


def test_vector_file_covers_every_kind_and_reason() -> None:
    kinds = {v["statement"]["kind"] for v in VECTORS["positive"]}
    assert kinds == {"trust", "certify", "rate", "revoke", "profile"}
    reasons = {v["reason"] for v in VECTORS["negative"]}
    assert reasons >= {
        "too_large",
        "malformed",
        "trailing_bytes",
        "unknown_version",
        "unknown_kind",
        "bad_field",
        "out_of_range",
        "non_canonical",
        "bad_signature",
    }


@pytest.mark.parametrize("vector", VECTORS["positive"], ids=lambda v: v["name"])
def test_positive_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["envelope_hex"])
    attestation = decode_attestation(data)
    assert attestation.id.hex() == vector["id_hex"]
    assert attestation.slot.id.hex() == vector["slot"]["id_hex"]
    assert attestation.issuer.hex() == vector["issuer_hex"]
    assert encode_identity_text(attestation.issuer) == vector["issuer_text"]
    assert encode_body(attestation.body).hex() == vector["body_hex"]
    assert attestation.envelope.signature.hex() == vector["signature_hex"]
    assert attestation.issued_at_ms == vector["issued_at_ms"]
    assert attestation.expires_at_ms == vector["expires_at_ms"]
    assert attestation.kind.name.lower() == vector["statement"]["kind"]
    # Ed25519 signing is deterministic: re-signing reproduces the bytes exactly.
    key = IdentityKey.from_seed(bytes.fromhex(vector["issuer_seed_hex"]))
    assert sign_attestation(attestation.body, key).data == data


@pytest.mark.parametrize("vector", VECTORS["negative"], ids=lambda v: v["name"])
def test_negative_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["envelope_hex"])
    expected = DecodeError if vector["error"] == "decode" else VerificationError
    with pytest.raises(RemoteProtocolError) as info:
        verify_envelope(decode_envelope(data))
    assert type(info.value) is expected
    assert info.value.reason.value == vector["reason"]


@pytest.mark.parametrize("vector", VECTORS["identity_text"]["positive"], ids=lambda v: v["text"])
def test_identity_text_positive(vector: dict[str, str]) -> None:
    identity = IdentityId(bytes.fromhex(vector["identity_hex"]))
    assert encode_identity_text(identity) == vector["text"]
    assert decode_identity_text(vector["text"]) == identity


@pytest.mark.parametrize("vector", VECTORS["identity_text"]["negative"], ids=lambda v: v["name"])
def test_identity_text_negative(vector: dict[str, str]) -> None:
    with pytest.raises(DecodeError) as info:
        decode_identity_text(vector["text"])
    assert info.value.reason.value == vector["reason"]


@pytest.mark.parametrize("vector", VECTORS["commitments"])
def test_commitment(vector: dict[str, str]) -> None:
    subject = IdentityId(bytes.fromhex(vector["subject_hex"]))
    value, salt = bytes.fromhex(vector["value_hex"]), bytes.fromhex(vector["salt_hex"])
    commitment = commit_claim_value(subject=subject, claim=vector["claim"], value=value, salt=salt)
    assert commitment.hex() == vector["commitment_hex"]
    certify = Certify(subject=subject, claim=vector["claim"], commitment=commitment)
    assert is_commitment_opening(certify, value=value, salt=salt)
    assert not is_commitment_opening(certify, value=value + b"!", salt=salt)


@pytest.mark.parametrize("vector", VECTORS["freshness"])
def test_freshness(vector: dict[str, Any]) -> None:
    attestation = decode_attestation(bytes.fromhex(vector["envelope_hex"]))
    limits = {"now_ms": vector["now_ms"], "max_skew_ms": vector["max_skew_ms"]}
    if vector["result"] == "ok":
        check_fresh(attestation, **limits)
    else:
        with pytest.raises(VerificationError) as info:
            check_fresh(attestation, **limits)
        assert info.value.reason.value == vector["result"]


@pytest.mark.parametrize("vector", VECTORS["supersession"], ids=lambda v: v["name"])
def test_supersession(vector: dict[str, Any]) -> None:
    members = [decode_attestation(bytes.fromhex(h)) for h in vector["envelopes_hex"]]
    assert slot_head(members).id.hex() == vector["head_id_hex"]
    current = resolve_slot(members, now_ms=vector["now_ms"])
    assert (None if current is None else current.id.hex()) == vector["current_id_hex"]


# The extra checks SPEC §4.2 asks of an implementation on a lax library (OpenSSL):
# canonical A and R, and neither of small order (bit 255 cleared before comparing).
_P = 2**255 - 19
_SMALL_ORDER = {
    bytes.fromhex(h)
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    )
}
# What OpenSSL's Ed25519 accepts among the negative vectors (checked with
# pyca/cryptography 50 on OpenSSL 4.0), so what the SPEC's extra checks must refuse.
_LAX_ACCEPTED = {"small-order-key", "non-canonical-key", "small-order-r"}
_NON_CANONICAL_R = {"non-canonical-r-y-p", "non-canonical-r-y-p-plus-1"}


def _passes_spec_prechecks(point: bytes) -> bool:
    cleared = point[:31] + bytes([point[31] & 0x7F])
    return int.from_bytes(cleared, "little") < _P and cleared not in _SMALL_ORDER


def test_spec_prechecks_refuse_what_lax_verifiers_accept() -> None:
    negative = {v["name"]: bytes.fromhex(v["envelope_hex"]) for v in VECTORS["negative"]}
    assert set(negative) >= _LAX_ACCEPTED | _NON_CANONICAL_R
    for name in _LAX_ACCEPTED | _NON_CANONICAL_R:
        data = negative[name]
        key, r = decode_envelope(data).body.issuer, data[-64:-32]
        assert not (_passes_spec_prechecks(key) and _passes_spec_prechecks(r)), name
    for name in _NON_CANONICAL_R:  # an R of y >= p, so never the encoding of a point
        r = negative[name][-64:-32]
        assert int.from_bytes(r[:31] + bytes([r[31] & 0x7F]), "little") >= _P
    for vector in VECTORS["positive"]:  # honest signatures pass them
        data = bytes.fromhex(vector["envelope_hex"])
        assert _passes_spec_prechecks(data[6:38])
        assert _passes_spec_prechecks(data[-64:-32])
