"""What a node refuses to sign in its member's name, alike through Node, the API and the CLI."""

from __future__ import annotations

import httpx
import pytest

from node.errors import RequestError
from node.service import Node
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Kind, Thing
from tests.service.api_app import TOKEN

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOB_ID = IdentityKey.from_seed(bytes([2]) * 32).identity
BOB = encode_identity_text(BOB_ID)


async def test_revoking_an_empty_slot_is_refused_naming_the_slots_held(node: Node) -> None:
    await node.trust(BOB_ID, 60, context="carpool")
    await node.certify(BOB_ID, "resident:rue-des-lilas")
    with pytest.raises(RequestError) as refused:
        await node.revoke(Kind.TRUST, BOB_ID, "carpol")
    assert refused.value.code == "not_found"
    assert "trust carpool" in str(refused.value)
    assert "certify resident:rue-des-lilas" in str(refused.value)
    assert len(await node.attestations(issuer=node.identity)) == 2  # nothing was signed
    await node.revoke(Kind.TRUST, BOB_ID, "carpool")
    with pytest.raises(RequestError, match="you do have: certify"):
        await node.revoke(Kind.TRUST, BOB_ID, "carpool")  # already revoked: empty again


async def test_revoking_a_rating_of_a_thing_that_was_never_rated_is_refused(node: Node) -> None:
    with pytest.raises(RequestError, match="nothing to revoke"):
        await node.revoke(Kind.RATE, Thing("urn:tool:drill-7"), "general")


async def test_the_api_answers_404_not_found_for_an_empty_slot(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/trust", json={"subject": BOB, "context": "carpool"}, headers=AUTH)
    body = {"kind": "trust", "subject": BOB, "scope": "carpol"}
    answer = await client.post("/v1/revoke", json=body, headers=AUTH)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert "trust carpool" in answer.json()["error"]["message"]
    body["scope"] = "carpool"
    assert (await client.post("/v1/revoke", json=body, headers=AUTH)).status_code == 201


async def test_a_self_vouch_or_self_flag_is_refused(node: Node, client: httpx.AsyncClient) -> None:
    with pytest.raises(RequestError) as refused:
        await node.trust(node.identity, 50)
    assert refused.value.code == "bad_value"
    with pytest.raises(RequestError, match="yourself"):
        await node.distrust(node.identity, 50)
    me = encode_identity_text(node.identity)
    for path in ("/v1/trust", "/v1/distrust"):
        answer = await client.post(path, json={"subject": me}, headers=AUTH)
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "bad_value")
    assert await node.attestations(issuer=node.identity) == []


async def test_ratings_answer_every_context_a_subject_was_rated_in(
    client: httpx.AsyncClient,
) -> None:
    for context, value in (("lending", -40), ("repair", 80)):
        body = {"subject": "urn:tool:drill-7", "value": value, "context": context}
        assert (await client.post("/v1/rate", json=body, headers=AUTH)).status_code == 201
    answer = await client.get("/v1/ratings", params={"subject": "urn:tool:drill-7"}, headers=AUTH)
    assert [(r["context"], r["value"]) for r in answer.json()] == [
        ("lending", -0.4),
        ("repair", 0.8),
    ]
    none = await client.get("/v1/ratings", params={"subject": "urn:x:y"}, headers=AUTH)
    assert none.json() == []
