"""A fresh member joins, loses its connection half-way, and resumes: what it
already stored is never sent again (issue #5, seeded virtual time)."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from node.gossip.peers import PeerManager, PeerManagerConfig
from node.net.simnet import SimNetwork
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import T0, Member

pytestmark = pytest.mark.slow
COMMUNITY_SIZE = 3000


async def test_an_interrupted_join_resumes_without_resending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=5)
    old, fresh = Member("old", 1), Member("fresh", 2)
    others = [Member(f"m{i}", 10 + i) for i in range(20)]
    community = [m.attest(old, n) for m in others for n in range(COMMUNITY_SIZE // len(others))]
    old.store.apply(community, now_ms=T0)

    async def dial(address: str) -> trio.abc.Stream:
        return await net.connect("fresh", address)

    config = PeerManagerConfig(backoff_initial_s=1.0, backoff_max_s=5.0)
    joiner = PeerManager(
        gossip=fresh.gossip, identity_key=fresh.key, community=COMMUNITY, dial=dial,
        rng=random.Random(2), config=config,
    )  # fmt: skip
    host = PeerManager(
        gossip=old.gossip, identity_key=old.key, community=COMMUNITY, dial=dial,
        rng=random.Random(1),
    )  # fmt: skip
    joiner.add_address("old")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(host.run, net.listen("old"))
        nursery.start_soon(joiner.run)
        while fresh.gossip.stored_from_peers < COMMUNITY_SIZE // 3:
            await fresh.gossip.wait_progress()
        net.take_down("fresh")  # the connection drops mid-join
        interrupted_at = len(fresh.ids())
        assert 0 < interrupted_at < COMMUNITY_SIZE
        await trio.sleep(3)
        net.bring_up("fresh")
        while len(fresh.ids()) < COMMUNITY_SIZE:
            await fresh.gossip.wait_progress()
        # Every attestation arrived once: none of those stored before the
        # break was sent again (reconciliation resumes from the stored set).
        assert fresh.gossip.payload_copies_received <= COMMUNITY_SIZE * 1.02
        assert fresh.ids() == old.ids()
        nursery.cancel_scope.cancel()
