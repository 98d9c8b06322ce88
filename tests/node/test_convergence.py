"""Hundreds of nodes on the simulated network: every node gets every new attestation.

Issue #5's targets are asserted: each attestation reaches 99 % of the members
within 6 hops and all within 8, at <= 1.2 payload copies per member, with
announcements <= 0.2x the payload bytes. Every attestation here is its author's
first: the source trees (SPEC §9.4) are known from routes before any attestation
travels, so none floods.
"""

from __future__ import annotations

import random
import statistics

import pytest
import trio
import trio.testing

from node.net.simnet import LinkModel, SimNetwork
from protocol.attestation import AttestationId
from simulations.convergence import link
from tests.node.test_gossip import Member

pytestmark = pytest.mark.slow
NODES = 300
LATENCY_S = 0.1  # fixed one-way latency: arrival time / latency counts hops


async def arrivals(
    members: list[Member], attestation_id: AttestationId, limit_s: float
) -> list[float]:
    """Seconds until each member stored the attestation (sampled every tenth of a latency)."""
    start = trio.current_time()
    arrived: dict[str, float] = {}
    while len(arrived) < len(members) and trio.current_time() - start < limit_s:
        await trio.sleep(LATENCY_S / 10)
        for member in members:
            if member.name not in arrived and member.store.contains(attestation_id):
                arrived[member.name] = trio.current_time() - start
    return sorted(arrived.values())


async def test_every_node_gets_every_attestation(autojump_clock: trio.testing.MockClock) -> None:
    rng = random.Random(300)  # the seed of the topology and of the authors
    net = SimNetwork(seed=300, model=LinkModel(min_latency_s=LATENCY_S, max_latency_s=LATENCY_S))
    members = [Member(f"n{i}", i + 1, wide_seed=True) for i in range(NODES)]
    async with trio.open_nursery() as nursery:
        for member in members:  # each dials 3 others: about 6 links per node
            for other in rng.sample([m for m in members if m is not member], 3):
                await link(net, nursery, member, other)
        await trio.sleep(20)
        copies: list[float] = []
        worst: list[float] = []
        hops_99: list[float] = []
        announced: list[float] = []  # announcement bytes / payload bytes received
        for n in range(8):
            author = rng.choice(members)
            attestation = author.attest(rng.choice(members), n)
            before = sum(m.gossip.payload_copies_received for m in members)
            ids_before = sum(m.gossip.announcement_bytes_received for m in members)
            bytes_before = sum(m.gossip.payload_bytes_received for m in members)
            await author.gossip.publish([attestation])
            times = await arrivals(members, attestation.id, limit_s=10)
            assert len(times) == NODES, f"attestation {n} reached {len(times)} of {NODES}"
            received = sum(m.gossip.payload_copies_received for m in members) - before
            copies.append(received / (NODES - 1))
            ids = sum(m.gossip.announcement_bytes_received for m in members) - ids_before
            payload = sum(m.gossip.payload_bytes_received for m in members) - bytes_before
            announced.append(ids / payload)
            worst.append(times[-1] / LATENCY_S)
            hops_99.append(times[round(0.99 * NODES) - 1] / LATENCY_S)
            await trio.sleep(5)
        # Payloads travel once per member (measured 1.00; flooding over ~6 links:
        # about 4) and the other links carry 8-byte id prefixes (`ihave8`):
        # measured 0.08 of the payload bytes. Issue #5's targets: <= 1.2 copies,
        # <= 0.2x payload, 99 % within 6 hops, 100 % within 8 (measured 5.5 / 6).
        assert max(copies) <= 1.2, copies
        assert statistics.median(announced) <= 0.2, announced
        assert max(hops_99) <= 6, hops_99
        assert max(worst) <= 8, worst
        nursery.cancel_scope.cancel()
