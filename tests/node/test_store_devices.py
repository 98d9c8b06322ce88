"""Device bindings in the store and the relay policy (SPEC §16)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from node.gossip.relay import RelayGate, RelayPolicy
from node.store import LATEST_VERSION, MemoryStore, Store
from node.store.schema import migrate, schema_version
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement, revoke_device_statement
from protocol.identity import IdentityKey
from protocol.statement import Certify, Statement, Trust

KEYS = [IdentityKey.from_seed(bytes([n + 150]) * 32) for n in range(6)]
ME, ALICE, PHONE, BOB, CAT, OTHER = KEYS
T0 = 1_800_000_000_000


def att(key: IdentityKey, statement: Statement, at: int = T0) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def vouch(key: IdentityKey, subject: IdentityKey, at: int = T0) -> Attestation:
    return att(key, Trust(subject=subject.identity, value=70), at)


def bindings() -> list[Attestation]:
    return [
        att(ALICE, grant_statement(PHONE.identity), T0 - 5),
        att(PHONE, accept_statement(ALICE.identity), T0 - 5),
        att(ALICE, revoke_device_statement(PHONE.identity), T0 + 50),  # supersedes the grant
        att(ALICE, grant_statement(PHONE.identity), T0 - 9),  # superseded on arrival
    ]


@pytest.mark.parametrize("make", [lambda: Store.open(":memory:"), MemoryStore])
def test_key_bindings_returns_every_state(make: object) -> None:
    store = make()  # type: ignore[operator]
    noise = [att(ALICE, Certify(subject=BOB.identity, claim="resident")), vouch(ALICE, BOB)]
    store.apply([*bindings(), *noise], now_ms=T0)
    assert {a.id for a in store.key_bindings()} == {a.id for a in bindings()}


def test_old_stores_migrate_and_find_their_bindings(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    connection = sqlite3.connect(path, isolation_level=None)
    migrate(connection, target=3)
    old = Store(connection, str(path))
    old.apply(bindings(), now_ms=T0)
    old.close()
    with Store.open(path) as upgraded:
        assert schema_version(upgraded._connection) == LATEST_VERSION
        assert len(upgraded.key_bindings()) == len(bindings())
        plan = upgraded._connection.execute(
            "EXPLAIN QUERY PLAN SELECT envelope FROM attestations "
            "WHERE slot_kind = 2 AND substr(scope, 1, 4) = 'key:'"
        ).fetchall()
        assert "key_bindings" in str(plan)


def test_a_vouched_members_devices_are_vouched_until_their_cut_off() -> None:
    store = Store.open(":memory:")
    late = vouch(PHONE, CAT, T0 + 60)
    store.apply([vouch(ME, ALICE), vouch(PHONE, BOB), late, *bindings()[:2]], now_ms=T0)
    clock = [T0]
    gate = RelayGate(
        anchors=[ME.identity],
        policy=RelayPolicy(method="horizon", horizon_hops=2),
        wall_clock_ms=lambda: clock[0],
    )
    vouched = gate.vouched(store)
    # The phone is vouched with Alice, and its vouch for Bob is Alice's.
    assert {ALICE.identity, PHONE.identity, BOB.identity} <= vouched
    store.apply([bindings()[2]], now_ms=T0)
    clock[0] = T0 + 100
    gate.invalidate()
    vouched = gate.vouched(store)
    assert PHONE.identity not in vouched  # revoked at T0 + 50
    assert BOB.identity in vouched  # the phone's vouch dated T0 still counts
    assert CAT.identity not in vouched  # the one dated after the cut-off does not
