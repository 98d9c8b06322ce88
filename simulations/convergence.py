"""Scenario `convergence`: how fast, and at what cost, a new attestation reaches everyone.

N real gossip nodes (the daemon's `node.gossip.gossip_node` over the real Noise channel and
in-memory SQLite stores) on a `SimNetwork` with a fixed one-way latency, so that
arrival time / latency counts hops; each node dials `dials` random others
(about 2 x dials links per node). After a warm-up, `attestations` new
attestations are published one at a time by random authors (nearly always
their first). For each we record when every node stored it (its store hook),
the payload copies received per node (1.0 is ideal: each node gets it once)
and the announcement bytes (`ihave8` prefixes) relative to the payload bytes.
Each attestation travels along its author's shortest-path tree, known from
routes exchanged during the warm-up (SPEC §9.4): no flood, even for an
author's first.

Run: `python -m simulations.convergence [--nodes 1000] [--attestations 8] [--seed 1]`.
Virtual time (trio's MockClock): the figures depend only on the seed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Protocol

import trio

from node.gossip.gossip_node import GossipNode, InlineStore
from node.net.simnet import LinkModel, SimNetwork
from node.net.transport import open_secure_stream
from node.store import Store
from protocol.attestation import Attestation, AttestationBody, AttestationId, sign_attestation
from protocol.channel import Community
from protocol.handshake import Role
from protocol.identity import IdentityKey
from protocol.statement import Trust
from simulations.scenarios.common import in_virtual_time

COMMUNITY = Community(id=bytes(32), keys=(bytes([7]) * 32,))
T0 = 1_700_000_000_000
LATENCY_S = 0.1


@dataclass(frozen=True)
class Spread:
    """One attestation's spread."""

    hops_50: float
    hops_99: float
    hops_100: float
    reached: int
    copies_per_node: float
    announcement_vs_payload: float


class _Node:
    def __init__(self, index: int) -> None:
        self.name = f"n{index}"
        self.key = IdentityKey.from_seed((10_000 + index).to_bytes(32, "big"))
        self.store = Store.open(":memory:")
        self.gossip = GossipNode(
            store=InlineStore(self.store),
            wall_clock_ms=lambda: T0 + int(trio.current_time() * 1000),
            identity=self.key.identity,
        )

    def attest(self, subject: _Node, n: int) -> Attestation:
        body = AttestationBody(
            issuer=self.key.identity,
            issued_at_ms=T0 + n,
            statement=Trust(subject=subject.key.identity, context=f"c{n}", value=50),
        )
        return sign_attestation(body, self.key)


class Linkable(Protocol):
    """A gossip node as `link` needs it."""

    name: str
    key: IdentityKey
    gossip: GossipNode


async def link(net: SimNetwork, nursery: trio.Nursery, client: Linkable, server: Linkable) -> None:
    """Connect `client` to `server` over `net` (Noise handshake) and run both sessions."""
    listener = net.listen(f"{server.name}/{client.name}")

    async def accept() -> None:
        raw = await listener.accept()
        secure = await open_secure_stream(
            raw, role=Role.RESPONDER, community=COMMUNITY, identity_key=server.key
        )
        await server.gossip.run_session(secure, initiator=False)

    async def connect() -> None:
        raw = await net.connect(client.name, f"{server.name}/{client.name}")
        secure = await open_secure_stream(
            raw, role=Role.INITIATOR, community=COMMUNITY, identity_key=client.key
        )
        await client.gossip.run_session(secure, initiator=True)

    nursery.start_soon(accept)
    nursery.start_soon(connect)


async def _arrivals(nodes: list[_Node], author: _Node, attestation: Attestation) -> list[float]:
    """Publish; seconds until each node stored the attestation (exact: its store hook)."""
    attestation_id = attestation.id
    arrived: dict[str, float] = {}
    everyone = trio.Event()
    start = trio.current_time()

    def hook(node: _Node) -> Callable[[list[AttestationId]], None]:
        def stored(ids: list[AttestationId]) -> None:
            if attestation_id in ids:
                arrived.setdefault(node.name, trio.current_time() - start)
                if len(arrived) == len(nodes):
                    everyone.set()

        return stored

    for node in nodes:
        node.gossip.stored_hook = hook(node)
    await author.gossip.publish([attestation])
    with trio.move_on_after(30):
        await everyone.wait()
    for node in nodes:
        node.gossip.stored_hook = None
    return sorted(arrived.values())


def _quantile_hops(times: list[float], share: float, total: int) -> float:
    needed = max(1, round(share * total))
    return times[needed - 1] / LATENCY_S if len(times) >= needed else float("inf")


async def _scenario(nodes_count: int, dials: int, attestations: int, seed: int) -> list[Spread]:
    rng = random.Random(seed)
    model = LinkModel(min_latency_s=LATENCY_S, max_latency_s=LATENCY_S)
    net = SimNetwork(seed=seed, model=model)
    nodes = [_Node(i) for i in range(nodes_count)]
    spreads: list[Spread] = []
    async with trio.open_nursery() as nursery:
        for node in nodes:
            for other in rng.sample([m for m in nodes if m is not node], dials):
                await link(net, nursery, node, other)
        await trio.sleep(20)
        for n in range(attestations):
            author = rng.choice(nodes)
            attestation = author.attest(rng.choice(nodes), n)
            copies = sum(m.gossip.payload_copies_received for m in nodes)
            announced = sum(m.gossip.announcement_bytes_received for m in nodes)
            payload = sum(m.gossip.payload_bytes_received for m in nodes)
            times = await _arrivals(nodes, author, attestation)
            copies = sum(m.gossip.payload_copies_received for m in nodes) - copies
            announced = sum(m.gossip.announcement_bytes_received for m in nodes) - announced
            payload = sum(m.gossip.payload_bytes_received for m in nodes) - payload
            spreads.append(
                Spread(
                    hops_50=_quantile_hops(times, 0.5, nodes_count),
                    hops_99=_quantile_hops(times, 0.99, nodes_count),
                    hops_100=_quantile_hops(times, 1.0, nodes_count),
                    reached=len(times),
                    copies_per_node=copies / (nodes_count - 1),
                    announcement_vs_payload=announced / payload if payload else 0.0,
                )
            )
            await trio.sleep(5)
        nursery.cancel_scope.cancel()
    return spreads


def run(*, nodes: int, dials: int = 3, attestations: int = 8, seed: int = 1) -> list[Spread]:
    """Run the scenario in virtual time and return one `Spread` per attestation."""
    spreads: list[Spread] = []

    async def scenario() -> None:
        spreads.extend(await _scenario(nodes, dials, attestations, seed))

    in_virtual_time(scenario, seed=seed)  # repeatable, in any process
    return spreads


def main(argv: list[str] | None = None) -> int:
    """Print one line per attestation and a summary."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--dials", type=int, default=3)
    parser.add_argument("--attestations", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    spreads = run(
        nodes=arguments.nodes,
        dials=arguments.dials,
        attestations=arguments.attestations,
        seed=arguments.seed,
    )
    if arguments.json:
        print(json.dumps([asdict(s) for s in spreads]))
        return 0
    print(
        f"{arguments.nodes} nodes, ~{2 * arguments.dials} links each, {LATENCY_S * 1000:.0f} ms "
        f"links, seed {arguments.seed}; hops = arrival time / link latency"
    )
    print("  #  reached   50 %   99 %  100 %  copies/node  ihave bytes/payload bytes")
    for n, s in enumerate(spreads):
        print(
            f"  {n}  {s.reached:7d} {s.hops_50:6.1f} {s.hops_99:6.1f} {s.hops_100:6.1f} "
            f"{s.copies_per_node:12.2f} {s.announcement_vs_payload:12.2f}"
        )
    hops_99 = statistics.median(s.hops_99 for s in spreads)
    hops_100 = statistics.median(s.hops_100 for s in spreads)
    copies = statistics.median(s.copies_per_node for s in spreads)
    announced = statistics.median(s.announcement_vs_payload for s in spreads)
    print(
        f"medians: 99 % within {hops_99:.1f} hops, 100 % within {hops_100:.1f}, "
        f"{copies:.2f} copies per node, announcements {announced:.2f} x payload"
    )
    print(
        f"worst: 99 % within {max(s.hops_99 for s in spreads):.1f} hops, 100 % within "
        f"{max(s.hops_100 for s in spreads):.1f}, "
        f"{max(s.copies_per_node for s in spreads):.2f} copies per node, announcements "
        f"{max(s.announcement_vs_payload for s in spreads):.2f} x payload"
    )
    print("targets (issue #5): 99 % within 6 hops, 100 % within 8, <= 1.2 copies, <= 0.2x payload")
    print(f"{time.perf_counter() - started:.0f} s wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
