"""Custodians and recovery through the HTTP API and the service (SPEC §18)."""

from __future__ import annotations

import time

import httpx

from node.service import Node
from node.store import Outcome
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement
from protocol.identity import IdentityKey, encode_identity_text
from protocol.recovery import designation_statements, veto_statement
from protocol.statement import Statement, Trust
from protocol.succession import commit_statement, rotation_statement
from tests.service.api_app import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_designate_list_recover_and_veto(node: Node, client: httpx.AsyncClient) -> None:
    friends = [IdentityKey.generate().identity for _ in range(3)]
    stranger = IdentityKey.generate().identity
    for f in friends:
        await node.trust(f, 80)
    texts = [encode_identity_text(f) for f in friends]
    # Custodians must be members we vouch for, and k within 1..n.
    refused = await client.post(
        "/v1/custodians", json={"k": 2, "custodians": [*texts[:2], encode_identity_text(stranger)]},
        headers=AUTH,
    )  # fmt: skip
    assert refused.status_code == 400, refused.text
    too_many = await client.post("/v1/custodians", json={"k": 4, "custodians": texts}, headers=AUTH)
    assert too_many.status_code in (400, 422)
    made = await client.post("/v1/custodians", json={"k": 2, "custodians": texts}, headers=AUTH)
    assert made.status_code == 201, made.text
    assert len(made.json()) == 3
    listed = (await client.get("/v1/custodians", headers=AUTH)).json()
    assert listed["in_force"]["k"] == 2
    assert sorted(listed["in_force"]["custodians"]) == sorted(texts)
    # As a custodian of someone else: sign a recovery; the view of that member shows it.
    lost, new = IdentityKey.generate().identity, IdentityKey.generate().identity
    body = {"old": encode_identity_text(lost), "new": encode_identity_text(new)}
    signed = await client.post("/v1/recoveries", json=body, headers=AUTH)
    assert signed.status_code == 201, signed.text
    view = (await client.get(f"/v1/recoveries/{encode_identity_text(lost)}", headers=AUTH)).json()
    # The lost key never designated us: our recovery is listed but counts for nothing.
    assert [r["new"] for r in view["recoveries"]] == [encode_identity_text(new)]
    assert view["recoveries"][0]["custodians"] == []
    assert view["recoveries"][0]["counts"] is False
    # A veto names exactly one target.
    both = {"recovery": encode_identity_text(new), "designation": "00" * 32}
    assert (await client.post("/v1/vetoes", json=both, headers=AUTH)).status_code == 400
    digest = listed["in_force"]["digest"]
    vetoed = await client.post("/v1/vetoes", json={"designation": digest}, headers=AUTH)
    assert vetoed.status_code == 201, vetoed.text
    after = (await client.get("/v1/custodians", headers=AUTH)).json()
    assert after["in_force"] is None  # our own key vetoed our only designation
    assert after["designations"][0]["vetoes"][0]["key"] == encode_identity_text(node.identity)


async def test_a_member_cannot_be_its_own_custodian(node: Node, client: httpx.AsyncClient) -> None:
    me = encode_identity_text(node.identity)
    answer = await client.post("/v1/custodians", json={"k": 1, "custodians": [me]}, headers=AUTH)
    assert answer.status_code == 400


async def test_explain_says_which_keys_carried_the_trust(
    node: Node, client: httpx.AsyncClient
) -> None:
    """Issue 26: a vouch for a member's previous key, and a device's vouch, in explain."""
    alice, bob, bob2, phone = (IdentityKey.generate() for _ in range(4))
    now = int(time.time() * 1000)
    await node.trust(alice.identity, 90)
    signed = [
        _att(alice, Trust(subject=bob.identity, value=80), now - 5000),
        _att(bob, commit_statement(bob2.identity), now - 4000),
        _att(bob2, rotation_statement(bob.identity, None), now - 3000),
        _att(alice, grant_statement(phone.identity), now - 4000),
        _att(phone, accept_statement(alice.identity), now - 4000),
        _att(phone, Trust(subject=bob2.identity, value=70, context="carpool"), now - 2000),
    ]
    report = await node.import_envelopes([a.data for a in signed])
    assert report.counts[Outcome.NEW] == len(signed), report
    answer = await client.get(f"/v1/explain/{encode_identity_text(bob2.identity)}", headers=AUTH)
    assert answer.status_code == 200, answer.text
    keys = answer.json()["keys"]
    assert keys["current"] == encode_identity_text(bob2.identity)
    assert [(s["how"], s["new"]) for s in keys["chain"]] == [
        ("rotation", encode_identity_text(bob2.identity))
    ]
    (note,) = keys["notes"]
    assert note["about"] == encode_identity_text(bob.identity)
    assert note["about_role"] == "previous"
    assert note["issued_at_ms"] == now - 5000
    carpool = await client.get(
        f"/v1/explain/{encode_identity_text(bob.identity)}",
        params={"context": "carpool"}, headers=AUTH,
    )  # fmt: skip
    (device_note,) = carpool.json()["keys"]["notes"]
    assert device_note["signer_role"] == "device"
    assert device_note["signed_by"] == encode_identity_text(phone.identity)


def _att(key: IdentityKey, statement: Statement, at: int) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


async def test_a_node_without_key_files_cannot_rotate(
    node: Node, client: httpx.AsyncClient
) -> None:
    node.key_files = None  # an embedded node in memory keeps no key files
    node.__dict__.pop("keys", None)
    answer = await client.post("/v1/key/rotate", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "unavailable"


async def test_commit_then_rotate_over_the_api(node: Node, client: httpx.AsyncClient) -> None:
    old = encode_identity_text(node.identity)
    assert (await client.post("/v1/key/rotate", headers=AUTH)).status_code == 409
    committed = (await client.post("/v1/key/commit", headers=AUTH)).json()
    assert committed["statement"]["claim"] == "key:next"
    rotated = await client.post("/v1/key/rotate", headers=AUTH)
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    assert body["key"] == committed["next_key"]
    assert body["statement"]["subject"] == old
    assert encode_identity_text(node.identity) == body["key"]
    assert (await client.get("/v1/key", headers=AUTH)).json()["committed"] is True
    # Our own chain: one member, the old key its inception.
    mine = (await client.get(f"/v1/identity/{body['key']}", headers=AUTH)).json()
    assert mine["member"] == old


async def test_a_designation_shows_the_lock_of_the_one_in_force(
    node: Node, client: httpx.AsyncClient
) -> None:
    """SPEC §18.2: a change waits for the lock of the designation *in force*, not of the
    one listed before it (here a vetoed one with a 30-day wait: the member must read
    24 h, the lock that really protects it, not 30 days)."""
    hour = 3600 * 1000
    friends = [IdentityKey.generate().identity for _ in range(3)]
    for f in friends:
        await node.trust(f, 80)
    key, now = node._key, int(time.time() * 1000)
    first = designation_statements(1, friends[:1], wait_ms=24 * hour)
    vetoed = designation_statements(1, friends[1:2], wait_ms=720 * hour)
    later = designation_statements(1, friends[2:])
    signed = [_att(key, first[0], now - 4000), _att(key, vetoed[0], now - 3000),
              _att(key, veto_statement(vetoed[0].commitment or b""), now - 2500),
              _att(key, later[0], now - 2000)]  # fmt: skip
    report = await node.import_envelopes([a.data for a in signed])
    assert all(item.outcome is Outcome.NEW for item in report.items)
    listed = (await client.get("/v1/custodians", headers=AUTH)).json()
    assert listed["in_force"]["digest"] == (first[0].commitment or b"").hex()
    locks = {d["digest"]: d["lock_ends_ms"] for d in listed["designations"]}
    assert locks[(later[0].commitment or b"").hex()] == now - 2000 + 24 * hour
