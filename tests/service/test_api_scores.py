"""`GET /v1/scores`: every member's score at once, equal to the one-member route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from node.api.app import create_app
from node.home.config import NodeConfig
from node.service import open_node
from protocol.identity import IdentityKey, encode_identity_text

TOKEN = "s" * 43
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANN, BOB = (IdentityKey.from_seed(bytes([n + 60]) * 32) for n in range(2))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = NodeConfig(data_dir=tmp_path / "n", community_id=bytes(32))
    async with open_node(config, network=False) as node:
        transport = httpx.ASGITransport(app=create_app(node, token=TOKEN))
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as opened:
            yield opened


async def test_scores_lists_every_member_like_the_score_route(client: httpx.AsyncClient) -> None:
    for key in (ANN, BOB):
        answer = await client.post(
            "/v1/trust", json={"subject": encode_identity_text(key.identity)}, headers=AUTH
        )
        assert answer.status_code == 201, answer.text
    listing = (await client.get("/v1/scores", headers=AUTH)).json()
    members = {m["identity"]: m["score"] for m in listing["members"]}
    assert set(members) == {encode_identity_text(k.identity) for k in (ANN, BOB)}
    for identity, value in members.items():
        one = (await client.get(f"/v1/score/{identity}", headers=AUTH)).json()
        assert one["score"] == value
    assert [m["score"] for m in listing["members"]] == sorted(members.values(), reverse=True)
    limited = (await client.get("/v1/scores?limit=1", headers=AUTH)).json()
    assert len(limited["members"]) == 1
    assert (await client.get("/v1/scores?min_score=2", headers=AUTH)).status_code == 422
    assert (await client.get("/v1/scores")).status_code == 401
