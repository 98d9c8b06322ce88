"""A device's profile and named vouches are its member's (SPEC §16.3), in any order."""

from __future__ import annotations

import itertools

from node.names.index import NameIndex
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement, revoke_device_statement
from protocol.identity import IdentityKey
from protocol.statement import Profile, Statement, Trust

ALICE, PHONE, BOB = (IdentityKey.from_seed(bytes([n + 200]) * 32) for n in range(3))
T0 = 1_800_000_000_000


def att(key: IdentityKey, statement: Statement, at: int) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def test_device_names_are_the_members_whatever_the_order() -> None:
    history = [
        att(ALICE, grant_statement(PHONE.identity), T0),
        att(PHONE, accept_statement(ALICE.identity), T0),
        att(PHONE, Profile(subject=PHONE.identity, name="Alice"), T0 + 1),
        att(PHONE, Trust(subject=BOB.identity, value=70, name="Bob (bakery)"), T0 + 2),
        att(ALICE, revoke_device_statement(PHONE.identity), T0 + 10),
        att(PHONE, Profile(subject=PHONE.identity, name="Not Alice"), T0 + 11),  # refused
    ]
    for order in itertools.permutations(history):
        index = NameIndex()
        for a in order:
            index.add([a])
        book = index.book(viewer=BOB.identity, petnames={}, trust={}, now_ms=T0 + 100)
        assert book.profiles == {ALICE.identity: "Alice"}
        assert book.given == {BOB.identity: [(ALICE.identity, "Bob (bakery)")]}
