"""Builds `protocol/vectors/rotation-v1.json` from fixed seeds (SPEC §17).

Run `python -m tests.vectors.rotation_vectors` to rewrite the file;
`tests/protocol/test_identity_vectors.py` fails if the file and this builder
disagree, and checks `protocol.succession` and the trust engine against it.
Cases are sets of envelopes (order means nothing) with the questions a reader
must answer: each key's member, whether a signature dated t counts, the
member edges.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Statement, Trust
from protocol.succession import (
    IdentityBook,
    commit_statement,
    member_trust_heads,
    next_key_digest,
    rotation_statement,
)
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "rotation-v1.json"
T0 = 1_700_000_000_000
TR = T0 + 1000

Json = dict[str, Any]
SEEDS = {"k0": 21, "k1": 22, "k2": 23, "thief": 24, "bob": 2, "cat": 3}
KEY = {name: IdentityKey.from_seed(bytes([n]) * 32) for name, n in SEEDS.items()}
NAMES = {k.identity: name for name, k in KEY.items()}


def sign(name: str, statement: Statement, at: int) -> Attestation:
    k = KEY[name]
    return sign_attestation(
        AttestationBody(issuer=k.identity, issued_at_ms=at, statement=statement), k
    )


def vouch(name: str, subject: str, value: int, at: int) -> Attestation:
    return sign(name, Trust(subject=KEY[subject].identity, value=value), at)


def commit(name: str, nxt: str, at: int = T0) -> Attestation:
    return sign(name, commit_statement(KEY[nxt].identity), at)


def rotate(new: str, old: str, after: str | None, at: int = TR) -> Attestation:
    return sign(
        new,
        rotation_statement(KEY[old].identity, None if after is None else KEY[after].identity),
        at,
    )


def _positive(name: str, description: str, signer: str, a: Attestation) -> Json:
    return {
        "name": name,
        "description": description,
        "issuer_seed_hex": (bytes([SEEDS[signer]]) * 32).hex(),
        "issuer_hex": a.issuer.hex(),
        "issuer_text": encode_identity_text(a.issuer),
        "issued_at_ms": a.issued_at_ms,
        "envelope_hex": a.data.hex(),
        "id_hex": a.id.hex(),
        "slot_id_hex": a.slot.id.hex(),
    }


def _case(
    name: str, description: str, attestations: list[Attestation], queries: list[tuple[str, int]]
) -> Json:
    book = IdentityBook()
    for a in attestations:
        book.add(a)
    heads = member_trust_heads(attestations)
    edges = []
    for (issuer, subject, context), head in sorted(heads.items()):
        statement = head.statement
        assert isinstance(statement, Trust)
        edges.append({
            "issuer": NAMES[issuer], "subject": NAMES[subject], "issuer_hex": issuer.hex(),
            "subject_hex": subject.hex(), "context": context, "value": statement.value,
            "id_hex": head.id.hex(),
        })  # fmt: skip
    return {
        "name": name,
        "description": description,
        "envelopes_hex": sorted(a.data.hex() for a in attestations),
        "keys": [
            {
                "key": key,
                "key_hex": KEY[key].identity.hex(),
                "member": NAMES[book.member(KEY[key].identity)],
                "member_hex": book.member(KEY[key].identity).hex(),
                "issued_at_ms": at,
                "counts": book.counts(KEY[key].identity, at),
            }
            for key, at in queries
        ],
        "member_edges": edges,
    }


def build_vectors() -> Json:
    """The whole vector file (deterministic: fixed seeds and times)."""
    c01 = commit("k0", "k1")
    r01 = rotate("k1", "k0", "k2")
    r12 = rotate("k2", "k1", None, TR + 100)
    return {
        "format": "trustnode-rotation-vectors",
        "format_version": 1,
        "spec": "protocol/SPEC.md#16-pre-committed-rotation",
        "claims": {"commit": "key:next", "rotate": "key:rotate"},
        "next_key_digests": [
            {"key_hex": KEY[n].identity.hex(), "digest_hex": next_key_digest(KEY[n].identity).hex()}
            for n in ("k1", "k2")
        ],
        "positive": [
            _positive(
                "commit", "k0 pre-commits to k1 (subject: H(next-key domain || k1))", "k0", c01
            ),
            _positive("rotate", "k1 succeeds k0 and commits to k2", "k1", r01),
            _positive("rotate-last", "k2 succeeds k1, committing to nothing yet", "k2", r12),
        ],
        "cases": [
            _case(
                "rotated",
                "k0 committed to k1, k1 rotated at TR: one member (k0); k0's vouch dated TR "
                "is refused",
                [
                    c01,
                    r01,
                    vouch("k0", "bob", 80, TR - 1),
                    vouch("k0", "cat", 80, TR),
                    vouch("bob", "k1", 60, TR),
                ],
                [("k0", TR - 1), ("k0", TR), ("k1", TR + 5)],
            ),
            _case(
                "two-rotations",
                "k0 -> k1 -> k2: every key is the member k0; k1 stops counting at TR+100",
                [c01, r01, r12, vouch("k2", "bob", 70, TR + 200), vouch("k1", "cat", 50, TR + 100)],
                [("k2", TR + 200), ("k1", TR + 99), ("k1", TR + 100)],
            ),
            _case(
                "uncommitted",
                "the thief rotates with its own key: not committed, refused; k0 keeps counting",
                [c01, rotate("thief", "k0", None), vouch("k0", "bob", 40, TR + 5)],
                [("thief", TR), ("k0", TR + 5)],
            ),
            _case(
                "disputed",
                "the thief adds a second commitment with the stolen k0: no rotation of k0 counts",
                [c01, commit("k0", "thief", T0 + 10), rotate("thief", "k0", None), r01],
                [("thief", TR), ("k1", TR), ("k0", TR + 5)],
            ),
        ],
    }


def main() -> int:
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
