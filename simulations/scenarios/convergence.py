"""Scenario `convergence`: how fast, and at what cost, new attestations reach every node.

`nodes` full-stack nodes (gossip, peer manager, Noise, SQLite) on the simulated
network. After a warm-up, `attestations` single attestations are published
`interval_s` apart by random authors, then a `burst` at one instant. Figures:
median and worst time to 50 / 99 / 100 % of nodes, payload copies received per
node per attestation (1.0 = each node gets it once), bytes on the wire (all
traffic, handshakes and anti-entropy included) against the ideal (each
attestation's bytes once to each other node), and the burst's completion.
"""

from __future__ import annotations

import statistics

import trio

from protocol.attestation import AttestationId
from protocol.statement import Trust
from simulations.runner import Run
from simulations.scenarios.common import in_virtual_time, new_world, quantile_time
from simulations.world import World

WARM_UP_S = 10.0


def run(sim: Run) -> None:
    """See the module doc."""
    in_virtual_time(lambda: _main(sim), seed=sim.seed)


async def _publish_random(world: World, n: int) -> AttestationId:
    author, subject = world.rng.choice(world.members), world.rng.choice(world.members)
    statement = Trust(subject=subject.key.identity, context=f"c{n}", value=50)
    return (await world.publish(author, statement)).id


async def _main(sim: Run) -> None:
    world = new_world(sim)
    count, burst = int(sim.params["attestations"]), int(sim.params["burst"])
    resync = float(sim.params["resync_s"])
    async with trio.open_nursery() as nursery:
        sim.phase("forming the community")
        await world.start(nursery)
        await trio.sleep(WARM_UP_S)
        sim.progress(0.1, "connected")
        sim.phase("single attestations")
        bytes_before = world.net.bytes_sent
        copies_before = sum(m.gossip.payload_copies_received for m in world.members)
        singles = []
        for n in range(count):
            singles.append(await _publish_random(world, n))
            await trio.sleep(float(sim.params["interval_s"]))
            sim.progress(0.1 + 0.6 * (n + 1) / max(count, 1), f"attestation {n + 1}/{count}")
        singles_done = await world.wait_complete(singles, timeout_s=3 * resync)
        sim.delivered(sum(len(world.holders(a)) for a in singles))
        wire = world.net.bytes_sent - bytes_before
        copies = sum(m.gossip.payload_copies_received for m in world.members) - copies_before
        copies_before = sum(m.gossip.payload_copies_received for m in world.members)
        sim.phase("burst")
        burst_start = trio.current_time()
        burst_ids = [await _publish_random(world, count + n) for n in range(burst)]
        burst_done = await world.wait_complete(burst_ids, timeout_s=3 * resync)
        sim.delivered(sum(len(world.holders(a)) for a in burst_ids))
        burst_copies = sum(m.gossip.payload_copies_received for m in world.members) - copies_before
        sim.progress(1.0, "done")
        sim.phase("ending and figures")
        world.stop(nursery)
    # One number for the burst, in the claim and in the figure: the last arrival after
    # the burst began, exact (wait_complete's answer is rounded up to its polling step).
    burst_s = max((max(world.holders(a).values()) - burst_start for a in burst_ids), default=0.0)
    _report(sim, world, singles, burst_ids, burst_start, wire=wire, copies=copies)
    sim.figure("burst: time to 100 %", burst_s, "s")
    if burst_ids:
        per_node = burst_copies / len(burst_ids) / (sim.nodes - 1)
        sim.figure("burst: payload copies per node", per_node, "copies")
    sim.claim(
        "every single attestation reached every node",
        singles_done is not None,
        "" if singles_done is not None else f"not complete after {3 * resync:.0f} s",
    )
    sim.claim(
        "the burst reached every node",
        burst_done is not None,
        f"in {burst_s:.3f} s" if burst_done is not None else "incomplete",
    )


def _report(
    sim: Run, world: World, singles: list[AttestationId], burst_ids: list[AttestationId],
    burst_start: float, *, wire: int, copies: int,
) -> None:  # fmt: skip
    total = len(world.members)
    for share, label in ((0.5, "50"), (0.99, "99"), (1.0, "100")):
        times = [quantile_time(world, a, share, total) for a in singles]
        sim.figure(f"time to {label} % (median)", statistics.median(times), "s")
        sim.figure(f"time to {label} % (worst)", max(times), "s")
    payload = sum(world.payload_bytes[a] for a in singles)
    ideal = payload * (total - 1)
    sim.figure("payload copies per node", copies / max(len(singles), 1) / (total - 1), "copies",
               "1.0 = each node receives each attestation once")  # fmt: skip
    sim.figure("bytes on the wire vs ideal", wire / ideal if ideal else 0.0, "x",
               "all traffic in the singles window / (attestation bytes x (nodes - 1))")  # fmt: skip
    deliveries = sum(len(world.holders(a)) for a in [*singles, *burst_ids])
    sim.figure("deliveries", deliveries, "attestation stored at a node")
    sim.axis("spread", "Spread of single attestations", y="share of (node, attestation) pairs")
    first = world.published[singles[0]]
    sim.series(
        "spread/first attestation", world.spread_curve(singles[:1], world.members, since=first)
    )
    curves = [world.spread_curve([a], world.members, since=world.published[a]) for a in singles]
    slowest = max(curves, key=lambda c: c[-1][0] if c else 0.0)
    sim.series("spread/slowest single", slowest)
    sim.axis("burst", f"A burst of {len(burst_ids)} attestations at one instant",
             y="share of (node, attestation) pairs delivered")  # fmt: skip
    sim.series("burst/delivered", world.spread_curve(burst_ids, world.members, since=burst_start))
