"""The code against protocol/vectors/rotation-v1.json (SPEC §16)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.trust import TrustEngine
from protocol.attestation import decode_attestation, sign_attestation
from protocol.devices import is_identity_statement
from protocol.identity import IdentityId, IdentityKey
from protocol.succession import IdentityBook
from tests.vectors.rotation_vectors import VECTORS_PATH, build_vectors
from tests.vectors.vector_file import render

VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def test_vector_file_is_current() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


@pytest.mark.parametrize("vector", VECTORS["positive"], ids=lambda v: v["name"])
def test_positive_vector(vector: dict[str, Any]) -> None:
    attestation = decode_attestation(bytes.fromhex(vector["envelope_hex"]))
    assert attestation.id.hex() == vector["id_hex"]
    assert attestation.slot.id.hex() == vector["slot_id_hex"]
    assert is_identity_statement(attestation.statement)
    signer = IdentityKey.from_seed(bytes.fromhex(vector["issuer_seed_hex"]))
    assert sign_attestation(attestation.body, signer).data == attestation.data


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda v: v["name"])
def test_resolution_case(case: dict[str, Any]) -> None:
    attestations = [decode_attestation(bytes.fromhex(h)) for h in case["envelopes_hex"]]
    for order in (attestations, attestations[::-1]):
        book = IdentityBook()
        for a in order:
            book.add(a)
        for query in case["keys"]:
            key = IdentityId(bytes.fromhex(query["key_hex"]))
            assert book.counts(key, query["issued_at_ms"]) is query["counts"]
            assert book.member(key).hex() == query["member_hex"]
        # The trust engine reaches the same member edges (viewer: an outsider).
        engine = TrustEngine(IdentityId(bytes(32)), now_ms=2**52, attestations=order)
        edges = {(e.issuer, e.subject, e.value) for e in engine.edges()}
        expected = {
            (bytes.fromhex(e["issuer_hex"]), bytes.fromhex(e["subject_hex"]), e["value"])
            for e in case["member_edges"]
        }
        assert edges == expected
