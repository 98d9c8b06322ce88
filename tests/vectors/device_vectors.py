"""Builds `protocol/vectors/devices-v1.json` from fixed seeds (SPEC §16).

Run `python -m tests.vectors.device_vectors` to rewrite the file;
`tests/protocol/test_identity_vectors.py` fails if the file and this builder
disagree, and checks `protocol.devices` and the trust engine against it.

Each case is a *set* of envelopes (the order in the file means nothing), the
key questions a reader must answer from it (whom a key speaks for, whether a
signature dated t counts) and the member edges that result (SPEC §16.3).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import (
    DeviceBook,
    accept_statement,
    grant_statement,
    leave_statement,
    revoke_device_statement,
)
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Statement, Trust
from protocol.succession import member_trust_heads
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "devices-v1.json"
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z

Json = dict[str, Any]


def key(n: int) -> IdentityKey:
    """The fixed key number `n`: its seed is 32 bytes of value `n` (as the attestation vectors)."""
    return IdentityKey.from_seed(bytes([n]) * 32)


ALICE, PHONE, LAPTOP, BOB, CAT, MALLORY = (key(n) for n in (1, 11, 12, 2, 3, 4))
SEEDS = {
    k.identity: n
    for k, n in zip((ALICE, PHONE, LAPTOP, BOB, CAT, MALLORY), (1, 11, 12, 2, 3, 4), strict=True)
}
NAMES = {k.identity: name for name, k in [
    ("alice", ALICE), ("phone", PHONE), ("laptop", LAPTOP), ("bob", BOB), ("cat", CAT),
    ("mallory", MALLORY),
]}  # fmt: skip


def sign(k: IdentityKey, statement: Statement, at: int) -> Attestation:
    return sign_attestation(
        AttestationBody(issuer=k.identity, issued_at_ms=at, statement=statement), k
    )


def vouch(k: IdentityKey, subject: IdentityKey, value: int, at: int) -> Attestation:
    return sign(k, Trust(subject=subject.identity, value=value), at)


def _positive(name: str, description: str, signer: IdentityKey, a: Attestation) -> Json:
    return {
        "name": name,
        "description": description,
        "issuer_seed_hex": (bytes([SEEDS[signer.identity]]) * 32).hex(),
        "issuer_hex": a.issuer.hex(),
        "issuer_text": encode_identity_text(a.issuer),
        "issued_at_ms": a.issued_at_ms,
        "envelope_hex": a.data.hex(),
        "id_hex": a.id.hex(),
        "slot_id_hex": a.slot.id.hex(),
    }


def _member_edges(attestations: list[Attestation]) -> list[Json]:
    """SPEC §16.3 over the set: drop refused signatures, map keys, supersede by member slot."""
    heads = member_trust_heads(attestations)
    edges = []
    for (issuer, subject, context), head in sorted(heads.items()):
        statement = head.statement
        assert isinstance(statement, Trust)
        edges.append({
            "issuer": NAMES[issuer], "subject": NAMES[subject], "issuer_hex": issuer.hex(),
            "subject_hex": subject.hex(), "context": context,
            "value": statement.value, "id_hex": head.id.hex(),
        })  # fmt: skip
    return edges


def _case(
    name: str,
    description: str,
    attestations: list[Attestation],
    queries: list[tuple[IdentityKey, int]],
) -> Json:
    book = DeviceBook()
    for a in attestations:
        book.add(a)
    return {
        "name": name,
        "description": description,
        "envelopes_hex": sorted(a.data.hex() for a in attestations),
        "keys": [
            {
                "key": NAMES[k.identity],
                "key_hex": k.identity.hex(),
                "member": NAMES[book.member(k.identity)],
                "member_hex": book.member(k.identity).hex(),
                "issued_at_ms": at,
                "counts": book.counts(k.identity, at),
            }
            for k, at in queries
        ],
        "member_edges": _member_edges(attestations),
    }


def build_vectors() -> Json:
    """The whole vector file (deterministic: fixed seeds and times)."""
    grant = sign(ALICE, grant_statement(PHONE.identity), T0)
    accept = sign(PHONE, accept_statement(ALICE.identity), T0 + 1)
    revoke = sign(ALICE, revoke_device_statement(PHONE.identity), T0 + 1000)
    leave = sign(LAPTOP, leave_statement(ALICE.identity), T0 + 2000)
    laptop = [
        sign(ALICE, grant_statement(LAPTOP.identity), T0),
        sign(LAPTOP, accept_statement(ALICE.identity), T0),
    ]
    before = vouch(PHONE, BOB, 80, T0 + 999)
    after = vouch(PHONE, BOB, -100, T0 + 1000)
    cat_by_phone = vouch(PHONE, CAT, 50, T0 + 10)
    cat_by_laptop = vouch(LAPTOP, CAT, 70, T0 + 10)
    mallory_grant = sign(MALLORY, grant_statement(PHONE.identity), T0)
    mallory_accept = sign(PHONE, accept_statement(MALLORY.identity), T0 + 2)
    return {
        "format": "trustnode-device-vectors",
        "format_version": 1,
        "spec": "protocol/SPEC.md#15-device-keys",
        "claims": {"grant": "key:device", "accept": "key:root"},
        "positive": [
            _positive("grant", "alice (root) authorises the phone key", ALICE, grant),
            _positive("accept", "the phone accepts alice as its root", PHONE, accept),
            _positive("revoke-grant", "alice revokes the phone from T0+1000 on", ALICE, revoke),
            _positive(
                "leave", "the laptop stops speaking for alice from T0+2000 on", LAPTOP, leave
            ),
        ],
        "cases": [
            _case(
                "paired",
                "grant and acceptance: the phone's vouch for bob is alice's",
                [grant, accept, before],
                [(PHONE, T0 + 999), (ALICE, T0), (BOB, T0)],
            ),
            _case(
                "grant-only",
                "a grant without the device's acceptance binds nothing",
                [grant, before],
                [(PHONE, T0 + 999)],
            ),
            _case(
                "accept-only",
                "an acceptance without the root's grant binds nothing (a pairing request)",
                [accept, before],
                [(PHONE, T0 + 999)],
            ),
            _case(
                "two-roots",
                "a key that accepted two roots is a device of neither",
                [grant, accept, mallory_grant, mallory_accept, before],
                [(PHONE, T0 + 999)],
            ),
            _case(
                "revoked",
                "revoked at T0+1000: the vouch dated T0+999 stays alice's, the distrust "
                "dated T0+1000 (same slot, newer) is refused: the older one heads the slot",
                [grant, accept, revoke, before, after],
                [(PHONE, T0 + 999), (PHONE, T0 + 1000)],
            ),
            _case(
                "left",
                "the laptop left at T0+2000: its later signatures are refused",
                [
                    *laptop,
                    leave,
                    vouch(LAPTOP, BOB, 60, T0 + 1999),
                    vouch(LAPTOP, CAT, 60, T0 + 2000),
                ],
                [(LAPTOP, T0 + 1999), (LAPTOP, T0 + 2000)],
            ),
            _case(
                "two-devices",
                "two devices write the same edge in the same millisecond: one member slot, "
                "the greater id wins; their other edges all stay",
                [
                    grant,
                    accept,
                    *laptop,
                    cat_by_phone,
                    cat_by_laptop,
                    before,
                    vouch(LAPTOP, BOB, 60, T0 + 10),
                ],
                [(PHONE, T0 + 10), (LAPTOP, T0 + 10)],
            ),
        ],
    }


def main() -> int:
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
