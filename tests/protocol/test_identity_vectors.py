"""The code against protocol/vectors/{devices,rotation,recovery}-v1.json (SPEC §16-§18)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from node.trust import TrustEngine
from protocol.attestation import decode_attestation, sign_attestation
from protocol.devices import is_identity_statement
from protocol.identity import IdentityId, IdentityKey
from protocol.succession import IdentityBook
from tests.vectors import device_vectors, recovery_vectors, rotation_vectors
from tests.vectors.vector_file import render

BUILDERS = (device_vectors, rotation_vectors, recovery_vectors)
FILES = [json.loads(b.VECTORS_PATH.read_text(encoding="utf-8")) for b in BUILDERS]
POSITIVE = [v for f in FILES for v in f["positive"]]
CASES = [c for f in FILES for c in f["cases"]]


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.VECTORS_PATH.name)
def test_vector_file_is_current(builder: object) -> None:
    path = builder.VECTORS_PATH  # type: ignore[attr-defined]
    assert path.read_text(encoding="utf-8") == render(builder.build_vectors())  # type: ignore[attr-defined]


@pytest.mark.parametrize("vector", POSITIVE, ids=lambda v: v["name"])
def test_positive_vector(vector: dict[str, Any]) -> None:
    attestation = decode_attestation(bytes.fromhex(vector["envelope_hex"]))
    assert attestation.id.hex() == vector["id_hex"]
    assert attestation.slot.id.hex() == vector["slot_id_hex"]
    assert is_identity_statement(attestation.statement)
    signer = IdentityKey.from_seed(bytes.fromhex(vector["issuer_seed_hex"]))
    assert sign_attestation(attestation.body, signer).data == attestation.data


@pytest.mark.parametrize("case", CASES, ids=lambda v: v["name"])
def test_resolution_case(case: dict[str, Any]) -> None:
    attestations = [decode_attestation(bytes.fromhex(h)) for h in case["envelopes_hex"]]
    for order in (attestations, attestations[::-1]):
        book = IdentityBook(now_ms=case.get("now_ms"))  # recoveries are read at a time (§18)
        for a in order:
            book.add(a)
        for query in case["keys"]:
            key = IdentityId(bytes.fromhex(query["key_hex"]))
            assert book.counts(key, query["issued_at_ms"]) is query["counts"]
            assert book.member(key).hex() == query["member_hex"]
        # The trust engine reaches the same member edges (viewer: an outsider).
        now = case.get("now_ms", 2**52)
        engine = TrustEngine(IdentityId(bytes(32)), now_ms=now, attestations=order)
        edges = {(e.issuer, e.subject, e.value) for e in engine.edges()}
        expected = {
            (bytes.fromhex(e["issuer_hex"]), bytes.fromhex(e["subject_hex"]), e["value"])
            for e in case["member_edges"]
        }
        assert edges == expected
