"""Names through the embedding API: petnames, profiles, named vouches, impostors, find."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from node.errors import RequestError
from node.names import NameSource
from node.service import NodeConfig, open_node
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityKey, encode_identity_text
from protocol.statement import Kind, Profile, Trust

pytestmark = pytest.mark.slow
T0 = 1_700_000_000_000


def _config(folder: Path) -> NodeConfig:
    return NodeConfig(
        data_dir=folder / "me", community_id=secrets.token_bytes(32),
        community_key=secrets.token_bytes(32), listen="127.0.0.1:0",
    )  # fmt: skip


def _signed(key: IdentityKey, statement: Profile | Trust, at_ms: int = T0) -> bytes:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at_ms, statement=statement)
    return sign_attestation(body, key).data


async def test_names_from_every_source_and_an_impostor(tmp_path: Path) -> None:
    alice, grace, mallory = (IdentityKey.generate() for _ in range(3))
    async with open_node(_config(tmp_path), network=False) as node:
        await node.trust(alice.identity, 80)
        await node.set_petname(alice.identity, "Alice (voisine)")
        await node.import_envelopes(
            [
                _signed(alice, Trust(subject=grace.identity, value=70, name="Grace")),
                _signed(grace, Profile(subject=grace.identity, name="Grace H")),
                _signed(mallory, Profile(subject=mallory.identity, name="Gr\u0430ce")),
            ]
        )
        names = await node.names([alice.identity, grace.identity, mallory.identity])
        assert names[alice.identity].label == "Alice (voisine)"
        assert names[grace.identity].source is NameSource.CONTACTS
        assert names[grace.identity].label == '"Grace" per Alice (voisine)'
        assert names[mallory.identity].label == "~Gr\u0430ce"
        assert [i.other for i in names[mallory.identity].impostors] == [grace.identity]
        # Grace first: my trust reaches her through Alice; nobody vouches for Mallory.
        found = [resolved.identity for resolved, _ in await node.find("grace")]
        assert found == [grace.identity, mallory.identity]

        # A petname is read wherever an identity is.
        assert await node.resolve_identity("Alice (voisine)") == alice.identity
        assert await node.resolve_identity("alice") == alice.identity  # the start, read alike
        assert await node.resolve_subject("Alice (voisine)") == alice.identity
        with pytest.raises(RequestError) as info:
            await node.resolve_identity("Zed")
        assert info.value.code == "bad_identity"
        with pytest.raises(RequestError) as info:
            await node.set_petname(grace.identity, "ALICE (voisine)")
        assert info.value.code == "conflict"

        made = await node.set_profile("Me", about="Rue des Lilas")
        assert made.kind is Kind.PROFILE
        with pytest.raises(RequestError) as info:
            await node.set_profile("Me\u202e")
        assert info.value.code == "bad_value"
        named = await node.trust(grace.identity, 40, name="Grace (boulangère)")
        assert isinstance(named.statement, Trust)
        assert named.statement.name == "Grace (boulangère)"
        assert await node.remove_petname(alice.identity) == "Alice (voisine)"
        with pytest.raises(RequestError):
            await node.remove_petname(alice.identity)
        await node.set_petname(grace.identity, "Grace")

    async with open_node(_config(tmp_path), network=False) as again:
        assert again.petnames() == {grace.identity: "Grace"}  # durable
        assert encode_identity_text(await again.resolve_identity("Grace")).startswith("tn_")


async def test_the_name_book_is_kept_until_the_store_petnames_or_time_change(
    tmp_path: Path,
) -> None:
    alice, grace = IdentityKey.generate(), IdentityKey.generate()
    now = [T0]
    async with open_node(_config(tmp_path), network=False, wall_clock_ms=lambda: now[0]) as node:
        await node.trust(alice.identity, 80)
        first = await node.name_book()
        assert await node.name_book() is first  # nothing changed: the same book
        await node.import_envelopes(
            [_signed(alice, Trust(subject=grace.identity, value=70, name="Grace"), at_ms=T0)]
        )
        after_vouch = await node.name_book()  # the store changed: a new book sees it
        assert after_vouch is not first
        assert after_vouch.resolve(grace.identity).name == "Grace"
        await node.set_petname(grace.identity, "Grace (rue des Lilas)")
        after_petname = await node.name_book()
        assert after_petname.resolve(grace.identity).label == "Grace (rue des Lilas)"
        assert await node.name_book() is after_petname
        now[0] += 61_000  # past the book's time to live (statements may have expired)
        assert await node.name_book() is not after_petname


async def test_log_lines_name_peers_as_the_node_does(tmp_path: Path) -> None:
    alice, stranger = IdentityKey.generate(), IdentityKey.generate()
    async with open_node(_config(tmp_path), network=False) as node:
        describe = node.gossip.describe  # what GossipNode's connection lines print
        short = encode_identity_text(alice.identity)[:11] + "…"
        assert describe(alice.identity) == short  # no book built yet: the short id
        await node.set_petname(alice.identity, "Alice (voisine)")
        await node.name_book()
        assert describe(alice.identity) == f"{short} (Alice (voisine))"
        assert describe(stranger.identity) == encode_identity_text(stranger.identity)[:11] + "…"
