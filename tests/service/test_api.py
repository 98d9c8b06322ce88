"""The local HTTP API: the token guards all, errors are typed JSON, the document is current."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pytest
import trio
from fastapi import FastAPI
from fastapi.routing import APIRoute

from node.api.access import TOKEN_FILE, check_api_address, ensure_token, read_token
from node.api.app import create_app
from node.api.openapi import DOCUMENT, openapi_document
from node.api.server import serve_api
from node.errors import ConfigError, StoreError
from node.service import Node
from protocol.identity import IdentityKey, encode_identity_text
from tests.service.api_app import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOB = encode_identity_text(IdentityKey.from_seed(bytes([2]) * 32).identity)


def _example_path(route: APIRoute) -> str:
    return route.path.replace("{subject}", BOB)


async def test_every_route_but_health_needs_the_token_and_does_nothing_without_it(
    node: Node, client: httpx.AsyncClient
) -> None:
    app = create_app(node, token=TOKEN)
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert len(routes) >= 15
    for route in routes:
        for method in route.methods or ():
            for headers in ({}, {"Authorization": "Bearer " + "u" * 43}, {"Authorization": TOKEN}):
                answer = await client.request(
                    method, _example_path(route), headers=headers, json={"subject": BOB}
                )
                if route.path == "/health":
                    assert answer.status_code == 200
                    continue
                assert answer.status_code == 401, (method, route.path, answer.text)
                assert answer.json()["error"]["code"] == "unauthorized"
                assert answer.headers["www-authenticate"] == "Bearer"
    assert (await node.status()).attestations == 0


async def test_attest_then_query(client: httpx.AsyncClient) -> None:
    made = await client.post("/v1/trust", json={"subject": BOB, "value": 80}, headers=AUTH)
    assert made.status_code == 201
    assert made.json()["kind"] == "trust"
    assert made.json()["value"] == 80
    score = (await client.get(f"/v1/score/{BOB}", headers=AUTH)).json()
    assert score["score"] == pytest.approx(0.64)
    explained = (await client.get(f"/v1/explain/{BOB}", headers=AUTH)).json()
    assert explained["paths"][0]["route"][-1] == BOB
    certified = await client.post(
        "/v1/certify",
        json={"subject": BOB, "claim": "resident:x", "private_value": "12"},
        headers=AUTH,
    )
    assert certified.status_code == 201
    assert len(certified.json()["salt"]) == 64
    claim = (await client.get(f"/v1/claims/{BOB}?claim=resident:x", headers=AUTH)).json()
    assert claim["accepted"] is True  # we certified it ourselves
    rated = await client.post(
        "/v1/rate", json={"subject": "urn:tool:drill", "value": -20}, headers=AUTH
    )
    assert rated.status_code == 201
    rating = (await client.get("/v1/rating?subject=urn:tool:drill", headers=AUTH)).json()
    assert rating["value"] == pytest.approx(-0.2)
    revoked = await client.post(
        "/v1/revoke", json={"kind": "trust", "subject": BOB, "scope": "general"}, headers=AUTH
    )
    assert revoked.status_code == 201
    assert (await client.get(f"/v1/score/{BOB}", headers=AUTH)).json()["score"] == 0


async def test_export_import_round_trip(client: httpx.AsyncClient) -> None:
    await client.post("/v1/distrust", json={"subject": BOB}, headers=AUTH)
    exported = (await client.get("/v1/export", headers=AUTH)).text
    lines = exported.splitlines()
    assert lines[0].startswith("trustnode-export 1 ")
    assert len(lines) == 2
    again = await client.post("/v1/import", json={"envelopes": [lines[1], "00"]}, headers=AUTH)
    report = again.json()
    assert (report["new"], report["duplicate"], len(report["rejected"])) == (0, 1, 1)
    assert report["rejected"][0]["index"] == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/v1/score/tn_nope", None, 422, "invalid_request"),
        ("GET", "/v1/score/tn_" + "a" * 58, None, 400, "bad_identity"),  # its checksum fails
        ("POST", "/v1/trust", {"subject": BOB, "value": 0}, 422, "invalid_request"),
        ("POST", "/v1/trust", {"subject": BOB, "surprise": 1}, 422, "invalid_request"),
        ("POST", "/v1/trust", "not json", 422, "invalid_request"),
        # Neither an identity nor a URI: read as a petname (SPEC names), none fits.
        ("POST", "/v1/rate", {"subject": "bad uri", "value": 5}, 400, "bad_identity"),
        ("POST", "/v1/rate", {"subject": "bad\nuri", "value": 5}, 422, "invalid_request"),
        ("POST", "/v1/trust", {"subject": BOB, "context": "Carpool"}, 422, "invalid_request"),
        ("GET", "/v1/attestations", None, 400, "bad_value"),
        ("POST", "/v1/import", {"envelopes": ["zz"]}, 422, "invalid_request"),
        (
            "POST",
            "/v1/peers",
            {"address": "z\N{EMOJI MODIFIER FITZPATRICK TYPE-1-2}:1"},
            422,
            "invalid_request",
        ),
        ("POST", "/v1/peers", {"address": "127.0.0.1:9"}, 409, "not_configured"),
        # A peer address that no node could dial is bad input, not a node state (issue 21).
        ("POST", "/v1/peers", {"address": "127.0.0.1:99999"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "127.0.0.1:0"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "999.0.0.1:7400"}, 422, "invalid_request"),
        # Wildcards were accepted (202) and then never dialled, silently.
        ("POST", "/v1/peers", {"address": "0.0.0.0:7400"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "[::]:7400"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "[0:0::0]:7400"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "[not-v6]:7400"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "-host-:7400"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "a..b:7400"}, 422, "invalid_request"),
        ("POST", "/v1/peers", {"address": "[::1]:7400"}, 409, "not_configured"),
        ("POST", "/v1/peers", {"address": "peer.example:7400"}, 409, "not_configured"),
        # A subject with a slash in it (quoted as %2F by the CLI) fell through the
        # routes: "not_found: Not Found" for `explain '[bold]x[/]'`. Text that is not
        # `tn_…` may be a petname (names may hold a slash), so it is looked up as one:
        # none matches, and the answer says so in words.
        ("GET", "/v1/explain/%5Bbold%5Dx%5B%2F%5D", None, 400, "bad_identity"),
        ("GET", "/v1/score/a%2Fb", None, 400, "bad_identity"),
        ("GET", "/v1/claims/tn_abc%2Fdef?claim=x", None, 422, "invalid_request"),
        ("GET", "/v1/nothing-here", None, 404, "not_found"),
        ("DELETE", "/v1/status", None, 405, "method_not_allowed"),
    ],
)
async def test_errors_are_json_with_a_stable_code(
    client: httpx.AsyncClient, method: str, path: str, body: object, status: int, code: str
) -> None:
    answer = await client.request(method, path, json=body, headers=AUTH)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    await client.post("/v1/trust", json={"subject": BOB}, headers=AUTH)
    text = (await client.get("/metrics", headers=AUTH)).text
    assert "# TYPE trustnode_attestations gauge" in text
    assert "trustnode_attestations 1.0" in text
    assert "trustnode_protocol_errors_total 0.0" in text


async def test_committed_openapi_document_matches_the_code(node: Node) -> None:
    app: FastAPI = create_app(node, token=TOKEN)
    committed = json.loads(DOCUMENT.read_text(encoding="utf-8"))
    assert committed == json.loads(json.dumps(openapi_document(app))), (
        "the API changed: run `python -m node.api.openapi > node/api/openapi.json`"
    )


async def test_served_over_real_tcp_and_a_unix_socket(node: Node, tmp_path: Path) -> None:
    app = create_app(node, token=TOKEN)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve_api, app, "127.0.0.1:0")
        async with httpx.AsyncClient(base_url=f"http://{address}") as http:
            assert (await http.get("/health")).json() == {"status": "ok"}
            assert (await http.get("/v1/status", headers=AUTH)).json()["attestations"] == 0
        socket_path = tmp_path / "api.sock"
        await nursery.start(serve_api, app, f"unix:{socket_path}")
        assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
        transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as http:
            assert (await http.get("/v1/peers", headers=AUTH)).json() == []
        nursery.cancel_scope.cancel()


def test_api_stays_on_loopback_unless_allowed() -> None:
    for local in ("127.0.0.1:7401", "[::1]:7401", "localhost:7401", "unix:/tmp/x.sock"):
        check_api_address(local, allow_remote=False)
    with pytest.raises(ConfigError, match="allow_remote"):
        check_api_address("0.0.0.0:7401", allow_remote=False)
    check_api_address("0.0.0.0:7401", allow_remote=True)


def test_token_file_is_private_and_checked(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    assert len(token) >= 40
    assert ensure_token(tmp_path) == token == read_token(tmp_path)
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600
    os.chmod(tmp_path / TOKEN_FILE, 0o644)
    with pytest.raises(StoreError, match="readable by other users"):
        read_token(tmp_path)
    os.chmod(tmp_path / TOKEN_FILE, 0o600)
    (tmp_path / TOKEN_FILE).write_text("short\n")
    with pytest.raises(StoreError, match="does not hold a token"):
        read_token(tmp_path)


async def test_a_wildcard_peer_address_is_refused_in_words(client: httpx.AsyncClient) -> None:
    answer = await client.post("/v1/peers", json={"address": "0.0.0.0:7400"}, headers=AUTH)
    message = answer.json()["error"]["message"]
    assert message.startswith("body.address: 0.0.0.0 and :: are where a node listens"), message
