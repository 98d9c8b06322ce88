"""Scenario `join`: a fresh node's first sync against an established community.

`nodes` members already hold the same `community` attestations. A new member
(new identity, empty store) joins, bootstrapping from a few of them, and
fetches everything by set reconciliation (SPEC §13) and pushes. Figures: the
time until it holds everything, attestations per second, and the bytes it
received against the ideal (the attestations' own bytes, once each): payload
only, and everything on its links (handshakes, reconciliation, announcements).
"""

from __future__ import annotations

import trio

from node.store import ingest
from protocol.attestation import AttestationId
from protocol.statement import Trust
from simulations.runner import Run
from simulations.scenarios.common import in_virtual_time, new_world
from simulations.world import World

WARM_UP_S = 10.0


def run(sim: Run) -> None:
    """See the module doc."""
    in_virtual_time(lambda: _main(sim), seed=sim.seed)


def _fill(world: World, count: int) -> tuple[list[AttestationId], int]:
    """Give every member the same `count` attestations; return their ids and bytes."""
    made = []
    for n in range(count):
        author, subject = world.rng.choice(world.members), world.rng.choice(world.members)
        made.append(author.sign(Trust(subject=subject.key.identity, context=f"j{n}", value=50)))
    envelopes = [a.data for a in made]
    for member in world.members:
        ingest(
            member.store, envelopes, now_ms=world.clock_ms(), verified_cache=world.verified_cache
        )
    return [a.id for a in made], sum(len(e) for e in envelopes)


async def _main(sim: Run) -> None:
    world = new_world(sim)
    ids, ideal = _fill(world, int(sim.params["community"]))
    sim.progress(0.3, "community filled")
    async with trio.open_nursery() as nursery:
        await world.start(nursery)
        await trio.sleep(WARM_UP_S)
        newcomer = world.add_members(1)[0]
        wire_before = world.net.bytes_received[newcomer.name]
        started = trio.current_time()
        await world.start(nursery, [newcomer])
        took = await world.wait_complete(ids, members=[newcomer], timeout_s=600, step_s=0.2)
        wire = world.net.bytes_received[newcomer.name] - wire_before
        sim.progress(1.0, "joined")
        world.stop(nursery)
    payload = newcomer.gossip.payload_bytes_received
    elapsed = took if took is not None else float("inf")
    sim.figure("join time", elapsed, "s (virtual)")
    sim.figure("attestations per second", len(ids) / elapsed if took else 0.0, "/s (virtual)")
    sim.figure("payload bytes received vs ideal", payload / ideal, "x")
    sim.figure("all bytes received vs ideal", wire / ideal, "x", "handshakes, sync, announcements")
    sim.axis("join", "The newcomer catching up", y="share of the community's attestations held")
    sim.series("join/held", world.spread_curve(ids, [newcomer], since=started))
    sim.claim("the newcomer received every attestation", took is not None,
              f"{len(ids)} in {elapsed:.1f} s")  # fmt: skip
