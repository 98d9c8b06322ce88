"""Identities named by a unique prefix (node.service.prefixes), and errors in words."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.errors import RequestError
from node.home.config import NodeConfig
from node.service import Node, open_node
from node.service.prefixes import (
    IdentityPrefix,
    choose_identity,
    key_range,
    parse_identity_or_prefix,
)
from protocol.identity import IdentityId, IdentityKey, encode_identity_text
from tests.service.api_app import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
BOB_ID = IdentityKey.from_seed(bytes([2]) * 32).identity
BOB = encode_identity_text(BOB_ID)
# Two identities whose texts share their first 7 characters after tn_ (35 bits).
TWINS = [IdentityId(bytes(5) + secrets.token_bytes(27)) for _ in range(2)]


@given(key=st.binary(min_size=32, max_size=32), length=st.integers(6, 57))
def test_the_key_range_of_a_prefix_holds_exactly_the_keys_it_names(key: bytes, length: int) -> None:
    text = encode_identity_text(IdentityId(key))
    parsed = parse_identity_or_prefix(text[: 3 + length])
    assert isinstance(parsed, IdentityPrefix)
    assert parsed.low <= key
    assert parsed.high is None or key < parsed.high
    assert choose_identity(parsed, [key]) == key
    low, high = key_range(text[3 : 3 + min(length, 51)])
    assert (low, high) == (parsed.low, parsed.high)


def test_a_full_identity_is_decoded_and_bad_text_is_refused_in_words() -> None:
    assert parse_identity_or_prefix(BOB) == BOB_ID
    for bad in ("tn_abc", "tn_ABCDEFGH", "bob", BOB[:-1] + ("a" if BOB[-1] != "a" else "b")):
        with pytest.raises(RequestError) as refused:
            parse_identity_or_prefix(bad)
        assert refused.value.code == "bad_identity"
        assert "[a-z" not in str(refused.value)


def test_several_matches_are_ambiguous_and_listed() -> None:
    prefix = parse_identity_or_prefix(encode_identity_text(TWINS[0])[:10])
    assert isinstance(prefix, IdentityPrefix)
    with pytest.raises(RequestError) as refused:
        choose_identity(prefix, TWINS)
    assert refused.value.code == "ambiguous_identity"
    assert all(encode_identity_text(t) in str(refused.value) for t in TWINS)
    with pytest.raises(RequestError, match="no identity this node knows"):
        choose_identity(prefix, [])


@pytest.mark.slow
async def test_the_api_takes_a_unique_prefix_in_paths_queries_and_bodies(
    node: Node, client: httpx.AsyncClient
) -> None:
    await node.trust(BOB_ID, 80)
    short = BOB[:9]  # tn_ and 6
    score = await client.get(f"/v1/score/{short}", headers=AUTH)
    assert score.status_code == 200, score.text
    assert score.json()["subject"] == BOB
    labelled = await client.get(f"/v1/explain/{BOB[:11]}…", headers=AUTH)
    assert labelled.json()["subject"] == BOB
    listed = await client.get("/v1/attestations", params={"subject": short}, headers=AUTH)
    assert len(listed.json()) == 1
    body = {"kind": "trust", "subject": short, "scope": "general"}
    assert (await client.post("/v1/revoke", json=body, headers=AUTH)).status_code == 201


@pytest.mark.slow
async def test_the_api_lists_the_candidates_of_an_ambiguous_prefix(
    node: Node, client: httpx.AsyncClient
) -> None:
    for twin in TWINS:
        await node.trust(twin, 10)
    common = encode_identity_text(TWINS[0])[:10]
    answer = await client.get(f"/v1/score/{common}", headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "ambiguous_identity"
    assert all(encode_identity_text(t) in answer.json()["error"]["message"] for t in TWINS)
    unknown = await client.get("/v1/score/tn_zzzzzzzz", headers=AUTH)
    assert unknown.json()["error"]["code"] == "bad_identity"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/trust", {"subject": BOB, "context": "Carpool"}),
        ("POST", "/v1/trust", {"subject": "tn_abc"}),
        ("POST", "/v1/rate", {"subject": "bad uri", "value": 5}),
        ("POST", "/v1/rate", {"subject": BOB, "value": 5, "reference": "a b"}),
        ("POST", "/v1/import", {"envelopes": ["zz"]}),
        ("POST", "/v1/peers", {"address": "nowhere"}),
        ("GET", "/v1/score/tn_abc", None),
        ("GET", f"/v1/score/{BOB}?context=Carpool", None),
    ],
)
async def test_no_error_shows_a_regular_expression(
    client: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    answer = await client.request(method, path, json=body, headers=AUTH)
    assert answer.status_code in (400, 422), answer.text
    message = answer.json()["error"]["message"]
    assert not any(sign in message for sign in ("^", "$'", "[a-z", "{2}", "pattern")), message


async def test_a_prefix_names_the_inviter_and_connected_peers_before_any_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Right after join the store knows no one: `trust tn_ksyneq6h…` copied from
    # `peers` said "no identity this node knows starts with ...".
    carol_id = IdentityKey.from_seed(bytes([3]) * 32).identity
    config = NodeConfig(data_dir=tmp_path / "n", community_id=bytes(32), relay_anchors=(BOB,))
    async with open_node(config, network=False) as node:
        assert await node.resolve_identity(BOB[:9]) == BOB_ID  # the inviter (an anchor)
        ours = encode_identity_text(node.identity)
        assert await node.resolve_identity(ours[:10]) == node.identity
        carol = encode_identity_text(carol_id)
        with pytest.raises(RequestError, match="no identity this node knows"):
            await node.resolve_identity(carol[:12] + "…")
        monkeypatch.setattr(
            node.gossip, "describe_peers", lambda: [(carol_id, True, True)]
        )  # a connected peer, as `peers` lists it
        assert await node.resolve_identity(carol[:12] + "…") == carol_id
