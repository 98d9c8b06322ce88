"""Churn on the simulated network: 20 % of members crashed for good, 10 % a minute
leaving and coming back; every live member gets everything within one
anti-entropy period (issue #5, seeded virtual time)."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from node.gossip.peers import PeerManager, PeerManagerConfig
from node.net.simnet import SimNetwork
from protocol.attestation import AttestationId
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import Member

pytestmark = pytest.mark.slow
NODES = 40
ANTI_ENTROPY_S = 60.0


def _start(
    net: SimNetwork, members: list[Member], nursery: trio.Nursery, rng: random.Random
) -> None:
    config = PeerManagerConfig(max_active=6, backoff_initial_s=1.0, backoff_max_s=15.0)
    for index, member in enumerate(members):

        async def dial(address: str, source: str = member.name) -> trio.abc.Stream:
            return await net.connect(source, address)

        manager = PeerManager(
            gossip=member.gossip, identity_key=member.key, community=COMMUNITY, dial=dial,
            rng=random.Random(index), config=config,
        )  # fmt: skip
        for other in rng.sample([m for m in members if m is not member], 4):
            manager.add_address(other.name)
        nursery.start_soon(manager.run, net.listen(member.name))


async def _churn(
    net: SimNetwork, members: list[Member], churning: list[int], rng: random.Random
) -> list[AttestationId]:
    """Two minutes: every 15 s one member leaves and (once 3 are away) one comes
    back, 4 of 40 a minute, while live members publish."""
    away: set[int] = set()
    published: list[AttestationId] = []
    for step in range(8):
        leaving = rng.choice([i for i in churning if i not in away])
        net.take_down(members[leaving].name)
        away.add(leaving)
        if len(away) > 2:
            back = rng.choice(sorted(away - {leaving}))
            net.bring_up(members[back].name)
            away.discard(back)
        for _ in range(4):
            author = members[rng.choice([i for i in churning if i not in away])]
            attestation = author.attest(rng.choice(members), 10 * step + len(published))
            await author.gossip.publish([attestation])
            published.append(attestation.id)
        await trio.sleep(15)
    for index in away:
        net.bring_up(members[index].name)
    return published


async def test_live_members_converge_under_churn(autojump_clock: trio.testing.MockClock) -> None:
    rng = random.Random(40)
    net = SimNetwork(seed=40)
    members = [Member(f"n{i}", 1000 + i, wide_seed=True) for i in range(NODES)]
    async with trio.open_nursery() as nursery:
        _start(net, members, nursery, rng)
        await trio.sleep(20)
        crashed = set(rng.sample(range(NODES), NODES // 5))
        for index in crashed:
            net.take_down(members[index].name)
        churning = [i for i in range(NODES) if i not in crashed]
        wanted = set(await _churn(net, members, churning, rng))
        settled = trio.current_time()
        live = [members[i] for i in churning]
        while trio.current_time() - settled < 3 * ANTI_ENTROPY_S:
            if all(wanted <= m.ids() for m in live):
                break
            await trio.sleep(1)
        missing = sum(len(wanted - m.ids()) for m in live)
        assert missing == 0, f"{missing} attestation copies missing"
        assert trio.current_time() - settled <= ANTI_ENTROPY_S
        nursery.cancel_scope.cancel()
