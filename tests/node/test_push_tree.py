"""The push tree: after warm-up each node receives about one copy of each new attestation."""

from __future__ import annotations

import random

import trio
import trio.testing

from node.simnet import SimNetwork
from simulations.convergence import link
from tests.node.test_gossip import Member

NODES = 16


async def test_duplicates_prune_the_flood_into_a_tree(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(4)
    net = SimNetwork(seed=4)
    members = [Member(f"n{i}", i + 1) for i in range(NODES)]
    async with trio.open_nursery() as nursery:
        for i, member in enumerate(members):  # a ring plus one random chord each: degree ~4
            await link(net, nursery, member, members[(i + 1) % NODES])
            other = rng.choice([m for m in members if m is not member])
            await link(net, nursery, member, other)
        await trio.sleep(10)

        async def publish_rounds(count: int, offset: int) -> None:
            for n in range(count):
                author = rng.choice(members)
                await author.gossip.publish([author.attest(rng.choice(members), offset + n)])
                await trio.sleep(3)
            await trio.sleep(10)

        await publish_rounds(15, 0)  # warm-up: duplicates prune redundant eager links
        before = sum(m.gossip.payload_copies_received for m in members)
        announced = sum(m.gossip.announcements_received for m in members)
        await publish_rounds(20, 1000)
        copies = sum(m.gossip.payload_copies_received for m in members) - before
        ids = {bytes(i) for i in members[0].ids()}
        assert all({bytes(i) for i in m.ids()} == ids for m in members)  # everyone has everything
        per_node = copies / (20 * (NODES - 1))
        assert per_node <= 1.3, per_node  # a flood would deliver ~degree copies (about 4)
        assert sum(m.gossip.announcements_received for m in members) > announced
        nursery.cancel_scope.cancel()
