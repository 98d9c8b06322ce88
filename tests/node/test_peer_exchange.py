"""Peer exchange: members who only know one bootstrap address find each other and
stay connected after it disappears (issue #5, seeded virtual time)."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from node.gossip.peers import PeerManager, PeerManagerConfig
from node.net.simnet import SimNetwork
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import Member

pytestmark = pytest.mark.slow
NODES = 30


def _managers(net: SimNetwork, members: list[Member]) -> list[PeerManager]:
    managers = []
    for index, member in enumerate(members):

        async def dial(address: str, source: str = member.name) -> trio.abc.Stream:
            return await net.connect(source, address)

        config = PeerManagerConfig(
            max_active=4, backoff_initial_s=1.0, backoff_max_s=10.0, advertise=(member.name,)
        )
        manager = PeerManager(
            gossip=member.gossip, identity_key=member.key, community=COMMUNITY, dial=dial,
            rng=random.Random(index), config=config,
        )  # fmt: skip
        if index > 0:
            manager.add_address(members[0].name)  # everyone knows only the founder
        managers.append(manager)
    return managers


async def test_members_find_each_other_and_survive_the_founder(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=30)
    members = [Member(f"n{i}", 500 + i, wide_seed=True) for i in range(NODES)]
    managers = _managers(net, members)
    async with trio.open_nursery() as nursery:
        for member, manager in zip(members, managers, strict=True):
            nursery.start_soon(manager.run, net.listen(member.name))
        await trio.sleep(150)  # a couple of exchange rounds
        assert all(len(m.passive) + len(m.active) > 3 for m in managers[1:])
        net.take_down(members[0].name)  # the founder leaves for good
        await trio.sleep(120)
        live = members[1:]
        assert all(len(m.gossip.peers) >= 2 for m in live), [len(m.gossip.peers) for m in live]
        assert sum(m.replacements for m in managers[1:]) > 0
        author = live[3]
        attestation = author.attest(live[7], 1)
        await author.gossip.publish([attestation])
        await trio.sleep(10)
        assert all(m.store.contains(attestation.id) for m in live)
        nursery.cancel_scope.cancel()


async def test_one_peer_cannot_flood_the_passive_view(
    autojump_clock: trio.testing.MockClock,
) -> None:
    member = Member("x", 900, wide_seed=True)

    async def dial(address: str) -> trio.abc.Stream:
        raise OSError(address)

    config = PeerManagerConfig(max_active=1, max_passive=20, per_source=5, share=8)
    manager = PeerManager(
        gossip=member.gossip, identity_key=member.key, community=COMMUNITY, dial=dial,
        rng=random.Random(1), config=config,
    )  # fmt: skip
    liar = Member("liar", 901, wide_seed=True).key.identity
    for batch in range(10):
        manager.learn(tuple(f"bad{batch}-{i}" for i in range(32)), source=liar)
    assert len(manager.passive) == 5
    honest = Member("h", 902, wide_seed=True).key.identity
    manager.learn(("good1", "good2"), source=honest)
    assert {"good1", "good2"} <= set(manager.passive)
