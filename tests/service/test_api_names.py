"""The naming routes, and petnames and `name` objects where identities are read and shown."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from node.service import Node
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Profile
from tests.service.api_app import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOB_KEY = IdentityKey.from_seed(bytes([2]) * 32)
BOB = encode_identity_text(BOB_KEY.identity)
EVE_KEY = IdentityKey.from_seed(bytes([3]) * 32)
EVE = encode_identity_text(EVE_KEY.identity)


async def test_petnames_profile_find_and_names_beside_ids(
    node: Node, client: httpx.AsyncClient
) -> None:
    made = await client.post(
        "/v1/trust", json={"subject": BOB, "value": 80, "name": "Bob"}, headers=AUTH
    )
    assert made.json()["name"] == "Bob"
    named = await client.post(
        "/v1/petnames", json={"subject": BOB[:9], "name": "Bob (rue des Lilas)"}, headers=AUTH
    )
    assert named.status_code == 201
    assert named.json()["identity"] == BOB
    listed = (await client.get("/v1/petnames", headers=AUTH)).json()
    assert listed == [{"identity": BOB, "petname": "Bob (rue des Lilas)"}]
    # A petname is read where an identity is, in paths and bodies alike.
    score = (await client.get("/v1/score/" + quote("Bob (rue des Lilas)"), headers=AUTH)).json()
    assert score["subject"] == BOB
    assert score["name"]["label"] == "Bob (rue des Lilas)"
    assert score["name"]["source"] == "petname"
    ranking = (await client.get("/v1/ranking", headers=AUTH)).json()
    assert ranking["members"][0]["name"]["label"] == "Bob (rue des Lilas)"
    explained = (await client.get(f"/v1/explain/{BOB}", headers=AUTH)).json()
    assert explained["names"][BOB]["source"] == "petname"

    # An impostor's self-chosen name is marked and flagged.
    body = AttestationBody(
        issuer=EVE_KEY.identity, issued_at_ms=1, statement=Profile(subject=EVE_KEY.identity,
                                                                   name="B\u043eb")
    )  # fmt: skip
    await node.import_envelopes([sign_attestation(body, EVE_KEY).data])
    eve = (await client.get(f"/v1/names/{EVE}", headers=AUTH)).json()
    assert eve["label"] == "~B\u043eb"
    assert eve["resembles"] == [BOB]
    found = (await client.get("/v1/find?text=bob", headers=AUTH)).json()
    assert [f["identity"] for f in found] == [BOB, EVE]

    mine = await client.post("/v1/profile", json={"name": "Ann"}, headers=AUTH)
    assert (mine.status_code, mine.json()["kind"], mine.json()["name"]) == (201, "profile", "Ann")
    gone = await client.delete("/v1/petnames/" + quote("Bob (rue des Lilas)"), headers=AUTH)
    assert gone.json()["petname"] == "Bob (rue des Lilas)"
    again = await client.get("/v1/score/" + quote("Bob (rue des Lilas)"), headers=AUTH)
    assert again.json()["error"]["code"] == "bad_identity"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/profile", {"name": "A\u202eB"}, 400, "bad_value"),
        ("POST", "/v1/profile", {"name": "x" * 10_000}, 422, "invalid_request"),
        ("POST", "/v1/profile", {"name": "Zoe\u0301"}, 400, "bad_value"),
        ("POST", "/v1/petnames", {"subject": BOB, "name": "tn_abc"}, 400, "bad_value"),
        ("POST", "/v1/petnames", {"subject": BOB, "name": "a\nb"}, 400, "bad_value"),
        ("POST", "/v1/trust", {"subject": BOB, "name": "<b>\u200b</b>"}, 400, "bad_value"),
        ("GET", "/v1/score/Nobody", None, 400, "bad_identity"),
        ("GET", "/v1/find?text=", None, 422, "invalid_request"),
    ],
)
async def test_hostile_names_are_refused_typed(
    client: httpx.AsyncClient, method: str, path: str, body: object, status: int, code: str
) -> None:
    answer = await client.request(method, path, json=body, headers=AUTH)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


async def test_a_petname_taken_by_another_identity_is_a_conflict_naming_its_holder(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/petnames", json={"subject": BOB, "name": "Grace"}, headers=AUTH)
    for taken in ("Grace", "GRACE", "Gr\u0430ce"):  # the same name, or one read alike
        answer = await client.post(
            "/v1/petnames", json={"subject": EVE, "name": taken}, headers=AUTH
        )
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "conflict"
        assert BOB in error["message"]
        assert "'Grace'" in error["message"]
    # Renaming the holder itself is no conflict.
    again = await client.post("/v1/petnames", json={"subject": BOB, "name": "GRACE"}, headers=AUTH)
    assert again.status_code == 201


async def test_petnames_and_prefixes_name_subjects_in_every_route(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/v1/trust", json={"subject": BOB, "value": 60}, headers=AUTH)
    await client.post("/v1/petnames", json={"subject": BOB, "name": "Bob (rue)"}, headers=AUTH)
    for typed in ("Bob (rue)", "bob", BOB[:10]):
        rated = await client.post(
            "/v1/rate", json={"subject": typed, "value": 40, "context": "carpool"}, headers=AUTH
        )
        assert rated.status_code == 201, rated.text
        assert rated.json()["subject"] == BOB
        # What was signed names its subject as we do (the CLI's signing line shows it).
        assert rated.json()["subject_name"]["label"] == "Bob (rue)"
        rating = await client.get(
            "/v1/rating", params={"subject": typed, "context": "carpool"}, headers=AUTH
        )
        assert rating.json()["subject"] == BOB, rating.text
        ratings = await client.get("/v1/ratings", params={"subject": typed}, headers=AUTH)
        assert [r["subject"] for r in ratings.json()] == [BOB]
        about = await client.get("/v1/attestations", params={"subject": typed}, headers=AUTH)
        assert {a["subject"] for a in about.json()} == {BOB}
        claims = await client.get(
            "/v1/claims/" + quote(typed, safe=""), params={"claim": "x"}, headers=AUTH
        )
        assert claims.json()["subject"] == BOB, claims.text
    withdrawn = {"kind": "rate", "subject": "Bob (rue)", "scope": "carpool"}
    revoked = await client.post("/v1/revoke", json=withdrawn, headers=AUTH)
    assert revoked.status_code == 201, revoked.text
    assert revoked.json()["subject"] == BOB
    # A thing's URI is still a thing; text that is neither is refused in words.
    thing = await client.post(
        "/v1/rate", json={"subject": "https://example.org/bike", "value": 10}, headers=AUTH
    )
    assert thing.json()["subject"] == "https://example.org/bike"
    unknown = await client.post("/v1/rate", json={"subject": "Zed", "value": 10}, headers=AUTH)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "bad_identity")
    assert "petname" in unknown.json()["error"]["message"]
