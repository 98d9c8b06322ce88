"""Hundreds of nodes on the simulated network: every node gets every new attestation.

Measured here as a regression guard (issue #5's hop targets, 99 % within 6 hops
and 100 % within 8, are met by the first, flooded attestation but not yet once
the push tree has formed: see the closing note).
"""

from __future__ import annotations

import random
import statistics

import pytest
import trio
import trio.testing

from node.simnet import LinkModel, SimNetwork
from protocol.attestation import AttestationId
from simulations.convergence import link
from tests.node.test_gossip import Member

pytestmark = pytest.mark.slow
NODES = 300
LATENCY_S = 0.1  # fixed one-way latency: arrival time / latency counts hops


async def arrivals(
    members: list[Member], attestation_id: AttestationId, limit_s: float
) -> list[float]:
    """Seconds until each member stored the attestation (sampled every half latency)."""
    start = trio.current_time()
    arrived: dict[str, float] = {}
    while len(arrived) < len(members) and trio.current_time() - start < limit_s:
        await trio.sleep(LATENCY_S / 2)
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
        announced: list[float] = []  # announcement bytes / payload bytes received
        for n in range(8):
            author = rng.choice(members)
            attestation = author.attest(rng.choice(members), n)
            before = sum(m.gossip.payload_copies_received for m in members)
            ids_before = sum(m.gossip.announcements_received for m in members)
            bytes_before = sum(m.gossip.payload_bytes_received for m in members)
            await author.gossip.publish([attestation])
            times = await arrivals(members, attestation.id, limit_s=10)
            assert len(times) == NODES, f"attestation {n} reached {len(times)} of {NODES}"
            received = sum(m.gossip.payload_copies_received for m in members) - before
            copies.append(received / (NODES - 1))
            ids = sum(m.gossip.announcements_received for m in members) - ids_before
            payload = sum(m.gossip.payload_bytes_received for m in members) - bytes_before
            announced.append(32 * ids / payload)
            worst.append(times[-1] / LATENCY_S)
            await trio.sleep(5)
        # Once the push tree has formed, payloads travel about once per node:
        # measured 1.2-1.8 copies per node, median 1.3-1.5 (flooding over ~6 links: 4).
        # Issue #5's target is 1.2; the median guards against a regression (trio
        # shuffles runnable tasks, so one attestation may meet a repair in flight).
        assert statistics.median(copies[1:]) <= 1.6, copies
        # Lazy links carry 32-byte ids: measured 0.4-0.65 of the payload bytes
        # (issue #5 asks <= 0.2: not met; ids are announced on every lazy link).
        assert statistics.median(announced[1:]) <= 1.0, announced
        # Push and graft deliver within 2 s, long before anti-entropy (60 s) would.
        assert max(worst) * LATENCY_S <= 2.0, worst
        nursery.cancel_scope.cancel()
