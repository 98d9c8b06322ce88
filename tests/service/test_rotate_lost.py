"""`POST /v1/key/rotate` with `lost`: what the next key restored here may rotate (SPEC §17)."""

from __future__ import annotations

import time

import httpx

from node.service import Node
from node.store import Outcome
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Statement
from protocol.succession import IdentityBook, commit_statement, rotation_statement
from tests.service.api_app import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _att(key: IdentityKey, statement: Statement, at: int) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


async def test_a_key_already_rotated_is_not_rotated_again(
    node: Node, client: httpx.AsyncClient
) -> None:
    """The lost laptop had rotated already: the paper words are the key it rotated to,
    whose own next key stayed on the laptop. A second rotation of the lost key by the
    same next key would be a second commitment of that key (what `key commit` refuses:
    it disputes the chain, SPEC §17.2), so it is refused and nothing is signed."""
    lost, nxt, after = (IdentityKey.generate() for _ in range(3))
    now = int(time.time() * 1000)
    signed = [
        _att(lost, commit_statement(nxt.identity), now - 5000),
        _att(nxt, rotation_statement(lost.identity, after.identity), now - 4000),
    ]
    report = await node.import_envelopes([a.data for a in signed])
    assert report.counts[Outcome.NEW] == 2, report
    assert node.key_files is not None
    node.key_files.restore_next(nxt)
    own = node.identity
    answer = await client.post(
        "/v1/key/rotate", json={"lost": encode_identity_text(lost.identity)}, headers=AUTH
    )
    assert answer.status_code == 409, answer.text
    assert "already rotated" in answer.json()["error"]["message"]
    assert node.identity == own
    book = IdentityBook(now_ms=now)
    for attestation in await node._store.run(lambda s: s.key_bindings()):
        book.add(attestation)
    assert [k for k, _ in book.chain(lost.identity)] == [lost.identity, nxt.identity]
    assert book.successor(nxt.identity) is None
    held = await node._store.run(lambda s: s.key_bindings())
    assert sum(1 for a in held if a.issuer == nxt.identity) == 1  # no second rotation


async def _post_lost(client: httpx.AsyncClient, lost: IdentityKey) -> httpx.Response:
    body = {"lost": encode_identity_text(lost.identity)}
    return await client.post("/v1/key/rotate", json=body, headers=AUTH)


async def test_what_rotate_lost_refuses(node: Node, client: httpx.AsyncClient) -> None:
    """A device key (only roots rotate), a key committed to another next key than
    the one restored here, and a committed key with no next key restored."""
    root, phone, lost, nxt, other = (IdentityKey.generate() for _ in range(5))
    now = int(time.time() * 1000)
    signed = [
        _att(root, grant_statement(phone.identity), now - 5000),
        _att(phone, accept_statement(root.identity), now - 5000),
        _att(phone, commit_statement(nxt.identity), now - 4000),
        _att(lost, commit_statement(other.identity), now - 4000),
    ]
    report = await node.import_envelopes([a.data for a in signed])
    assert report.counts[Outcome.NEW] == len(signed), report
    own = node.identity
    no_next = await _post_lost(client, lost)
    assert no_next.status_code == 409
    assert "restore --next" in no_next.json()["error"]["message"]
    assert node.key_files is not None
    node.key_files.restore_next(nxt)
    device = await _post_lost(client, phone)
    assert device.status_code == 400, device.text
    assert "device key" in device.json()["error"]["message"]
    mismatch = await _post_lost(client, lost)
    assert mismatch.status_code == 409
    assert "does not name exactly" in mismatch.json()["error"]["message"]
    assert node.identity == own
    held = await node._store.run(lambda s: s.key_bindings())
    assert not any(a.issuer == nxt.identity for a in held)  # nothing signed
