"""Peers reconnect after a crash and the community re-converges (simulated, virtual time)."""

from __future__ import annotations

import random

import trio
import trio.testing

from node.gossip.peers import PeerManager, PeerManagerConfig
from node.net.simnet import SimNetwork
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import Member


async def test_crashed_member_reconnects_and_catches_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=11)
    names = ["a", "b", "c", "d"]
    members = {name: Member(name, seed) for seed, name in enumerate(names, start=1)}
    config = PeerManagerConfig(max_active=2, backoff_initial_s=2.0, backoff_max_s=30.0)
    managers = {}
    for index, name in enumerate(names):
        member = members[name]

        async def dial(address: str, source: str = name) -> trio.abc.Stream:
            return await net.connect(source, address)

        manager = PeerManager(
            gossip=member.gossip, identity_key=member.key, community=COMMUNITY, dial=dial,
            rng=random.Random(index), config=config,
        )  # fmt: skip
        manager.add_address(names[(index + 1) % 4])  # a ring of bootstrap addresses
        managers[name] = manager

    async with trio.open_nursery() as nursery:
        for name, manager in managers.items():
            nursery.start_soon(manager.run, net.listen(name))
        a, c = members["a"], members["c"]
        await a.gossip.publish([a.attest(c, n) for n in range(50)])
        await trio.sleep(20)
        assert all(len(m.ids()) == 50 for m in members.values())

        net.take_down("c")
        await trio.sleep(5)
        await a.gossip.publish([a.attest(members["b"], 100 + n) for n in range(20)])
        await trio.sleep(30)
        assert len(c.ids()) == 50  # c is cut off
        assert len(members["d"].ids()) == 70  # d still hears through a

        net.bring_up("c")
        back = trio.current_time()
        await trio.sleep(60)
        assert len(c.ids()) == 70  # redialled, reconciled, caught up
        assert trio.current_time() - back <= 60
        assert managers["c"].dial_failures + managers["b"].dial_failures > 0
        nursery.cancel_scope.cancel()
