"""Builds `protocol/vectors/recovery-v1.json` from fixed seeds (SPEC §18).

Run `python -m tests.vectors.recovery_vectors` to rewrite the file;
`tests/protocol/test_identity_vectors.py` fails if the file and this builder
disagree, and checks `protocol.succession` and the trust engine against it.
Same layout as the rotation vectors (SPEC §17), plus each case's `now_ms`: the
time the set is read at (recoveries take effect after a waiting period).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement
from protocol.identity import IdentityKey, encode_identity_text
from protocol.recovery import (
    DEFAULT_LOCK_MS,
    DEFAULT_WAIT_MS,
    custodian_set_digest,
    designation_statements,
    recovery_statement,
    veto_statement,
)
from protocol.statement import Statement, Trust
from protocol.succession import IdentityBook, member_trust_heads
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "recovery-v1.json"
T0 = 1_700_000_000_000
TL = T0 + 2 * DEFAULT_LOCK_MS  # the key is lost
DONE = TL + 1000  # the k-th custodian signs
AFTER = DONE + DEFAULT_WAIT_MS

Json = dict[str, Any]
SEEDS = {"k0": 41, "k1": 42, "thief": 43, "c1": 44, "c2": 45, "c3": 46, "c4": 47, "c5": 48}
SEEDS |= {"bob": 2, "phone": 49}
KEY = {name: IdentityKey.from_seed(bytes([n]) * 32) for name, n in SEEDS.items()}
NAMES = {k.identity: name for name, k in KEY.items()}
CUSTODIANS = ["c1", "c2", "c3", "c4", "c5"]


def sign(name: str, statement: Statement, at: int) -> Attestation:
    k = KEY[name]
    return sign_attestation(
        AttestationBody(issuer=k.identity, issued_at_ms=at, statement=statement), k
    )


def vouch(name: str, subject: str, value: int, at: int) -> Attestation:
    return sign(name, Trust(subject=KEY[subject].identity, value=value), at)


def designate(
    name: str, k: int, custodians: list[str], at: int, *, wait_ms: int | None = None
) -> list[Attestation]:
    ids = [KEY[c].identity for c in custodians]
    return [sign(name, s, at) for s in designation_statements(k, ids, wait_ms=wait_ms)]


def recover(custodian: str, new: str, at: int = DONE) -> Attestation:
    return sign(custodian, recovery_statement(KEY["k0"].identity, KEY[new].identity), at)


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
    name: str,
    description: str,
    attestations: list[Attestation],
    now_ms: int,
    queries: list[tuple[str, int]],
) -> Json:
    book = IdentityBook(now_ms=now_ms)
    for a in attestations:
        book.add(a)
    heads = member_trust_heads(attestations, now_ms=now_ms)
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
        "now_ms": now_ms,
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
    designation = designate("k0", 3, CUSTODIANS, T0)
    base = [*designation, vouch("bob", "k0", 80, T0), vouch("k1", "bob", 60, AFTER)]
    three = [recover(c, "k1", DONE - i) for i, c in enumerate(["c1", "c2", "c3"])]
    digest = custodian_set_digest(3, [KEY[c].identity for c in CUSTODIANS])
    thief_set = designate("k0", 1, ["thief"], TL)
    queries = [("k1", AFTER), ("k0", AFTER - 1), ("k0", AFTER)]
    return {
        "format": "trustnode-recovery-vectors",
        "format_version": 1,
        "spec": "protocol/SPEC.md#18-identity-lifecycle-recovery-by-custodians",
        "claims": {
            "designate": "key:custodian/<hex D[0..16]>[/<wait in hours>]",
            "recover": "key:recover",
            "veto": "key:veto",
        },
        "wait_ms": DEFAULT_WAIT_MS,
        "lock_ms": DEFAULT_LOCK_MS,
        "custodian_sets": [
            {
                "k": 3,
                "custodians_hex": sorted(KEY[c].identity.hex() for c in CUSTODIANS),
                "digest_hex": digest.hex(),
            },
            {
                "k": 3,
                "wait_hours": 96,
                "custodians_hex": sorted(KEY[c].identity.hex() for c in CUSTODIANS),
                "digest_hex": custodian_set_digest(
                    3, [KEY[c].identity for c in CUSTODIANS], wait_ms=WAIT_96H
                ).hex(),
            },
        ],
        "positive": [
            _positive(
                "designate", "k0 names c1 (one of five; 3 of 5 recover)", "k0", designation[0]
            ),
            _positive(
                "designate-96h",
                "k0 names c1 (3 of 5) in a designation that carries a 96 h wait and lock",
                "k0",
                designate("k0", 3, CUSTODIANS, T0, wait_ms=WAIT_96H)[0],
            ),
            _positive(
                "recover", "c1: k1 is really the member whose key k0 was lost", "c1", three[0]
            ),
            _positive(
                "veto",
                "the member's phone vetoes the recovery to thief",
                "phone",
                sign("phone", veto_statement(KEY["thief"].identity), DONE + 5),
            ),
        ],
        "cases": [
            _case(
                "recovered",
                "3 of 5 custodians name k1; at AFTER (the wait over) k1 is k0's "
                "successor: bob's vouch for k0 is the member's, k0 stops counting",
                [*base, *three],
                AFTER,
                queries,
            ),
            _case(
                "waiting",
                "the same set one millisecond before the wait ends: no successor",
                [*base, *three],
                AFTER - 1,
                queries,
            ),
            _case(
                "two-custodians", "k-1 custodians: no recovery", [*base, *three[:2]], AFTER, queries
            ),
            _case(
                "vetoed",
                "3 custodians name thief; the phone of k0 vetoes it",
                [
                    *base,
                    *[recover(c, "thief") for c in ("c1", "c2", "c3")],
                    sign("k0", _grant("phone"), T0),
                    sign("phone", _accept("k0"), T0),
                    sign("phone", veto_statement(KEY["thief"].identity), DONE + 5),
                ],
                AFTER,
                [("thief", AFTER), ("k0", AFTER)],
            ),
            _case(
                "swap-locked",
                "k0 (stolen) designates thief alone at TL; during the lock the "
                "old set is in force, so thief's own recovery does not count",
                [*base, *thief_set, recover("thief", "thief", TL + 1)],
                TL + DEFAULT_LOCK_MS - 1,
                [("thief", TL + 1), ("k0", TL + 2)],
            ),
            _case(
                "swap-vetoed",
                "the same swap after its lock, vetoed by k0's holder: the old set stays in force",
                [
                    *base,
                    *thief_set,
                    recover("thief", "thief", TL + 1),
                    sign(
                        "k0",
                        veto_statement(custodian_set_digest(1, [KEY["thief"].identity])),
                        TL + 10,
                    ),
                ],
                TL + 2 * DEFAULT_LOCK_MS + DEFAULT_WAIT_MS,
                [("thief", TL + 1)],
            ),
            *_wait_cases(three),
        ],
    }


WAIT_96H = 96 * 3600 * 1000
WAIT_24H = 24 * 3600 * 1000


def _wait_cases(three: list[Attestation]) -> list[Json]:
    """A designation that carries its own wait (SPEC §18.1): every node reads the same one."""
    own = [*designate("k0", 3, CUSTODIANS, T0, wait_ms=WAIT_96H), vouch("bob", "k0", 80, T0)]
    own.append(vouch("k1", "bob", 60, DONE + WAIT_96H))
    queries = [("k1", DONE + WAIT_96H), ("k0", DONE + WAIT_96H)]
    short = designate("k0", 1, ["thief"], TL, wait_ms=WAIT_24H)
    return [
        _case(
            "own-wait-not-yet",
            "3 of 5 under a 96 h designation: at DONE + 72 h (the default wait) no successor",
            [*own, *three], DONE + DEFAULT_WAIT_MS, queries,
        ),
        _case(
            "own-wait-over",
            "the same set at DONE + 96 h: k1 succeeds k0",
            [*own, *three], DONE + WAIT_96H, queries,
        ),
        _case(
            "own-lock",
            "under the 96 h designation, a thief's 24 h designation of itself is not in "
            "force 73 h after it: the lock is the one in force's (96 h), not the newcomer's",
            [*own, *short, recover("thief", "thief", TL + 1)],
            TL + DEFAULT_LOCK_MS + 3600_000, [("thief", TL + 1), ("k0", TL + 2)],
        ),
        _case(
            "own-lock-over",
            "the same swap 96 h after it: in force, and the thief's recovery (24 h wait) counts "
            "(what the member's veto within the lock is for)",
            [*own, *short, recover("thief", "thief", TL + 1)],
            TL + WAIT_96H, [("thief", TL + 1)],
        ),
    ]  # fmt: skip


def _grant(device: str) -> Statement:
    return grant_statement(KEY[device].identity)


def _accept(root: str) -> Statement:
    return accept_statement(KEY[root].identity)


def main() -> int:
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
