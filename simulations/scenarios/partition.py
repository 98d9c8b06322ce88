"""Scenario `partition`: split the community, write on both sides, heal, check nothing is lost.

Before the split, member A vouches for member B and everyone gets it. Then the
network splits in two halves for `split_s`; each side writes `writes` new
attestations, and A (on side one) revokes the vouch for B, so side two still
holds the old vouch. After the heal, every node must hold every attestation
from both sides (nothing lost), and the revocation must win everywhere: the
old vouch, which side two keeps offering, can never become current again (no
tombstone undone).
"""

from __future__ import annotations

import trio

from protocol.attestation import AttestationId
from protocol.statement import Kind, Revoke, SlotId, Trust
from simulations.runner import Run
from simulations.scenarios.common import in_virtual_time, new_world
from simulations.world import Member, World

WARM_UP_S = 10.0


def run(sim: Run) -> None:
    """See the module doc."""
    in_virtual_time(lambda: _main(sim), seed=sim.seed)


def _revoked_everywhere(world: World, slot_id: SlotId) -> bool:
    now = world.clock_ms()
    return all(m.store.current_in_slot(slot_id, now_ms=now) is None for m in world.members)


async def _write_split(
    sim: Run, world: World, sides: tuple[list[Member], list[Member]]
) -> list[list[AttestationId]]:
    """Each side writes `writes` attestations over `split_s`."""
    writes = int(sim.params["writes"])
    written: list[list[AttestationId]] = [[], []]
    for n in range(writes):
        for number, side in enumerate(sides):
            author, subject = world.rng.choice(side), world.rng.choice(world.members)
            statement = Trust(subject=subject.key.identity, context=f"p{number}-{n}", value=40)
            written[number].append((await world.publish(author, statement)).id)
        await trio.sleep(float(sim.params["split_s"]) / max(writes, 1))
    return written


async def _main(sim: Run) -> None:
    world = new_world(sim)
    members = world.members
    sides = (members[: len(members) // 2], members[len(members) // 2 :])
    resync = float(sim.params["resync_s"])
    async with trio.open_nursery() as nursery:
        await world.start(nursery)
        await trio.sleep(WARM_UP_S)
        voucher, vouched = sides[0][0], sides[1][0]
        vouch = await world.publish(voucher, Trust(subject=vouched.key.identity, value=80))
        before = await world.wait_complete([vouch.id], timeout_s=3 * resync)
        sim.progress(0.2, "split")
        world.net.partition([[m.name for m in side] for side in sides])
        written = await _write_split(sim, world, sides)
        revoke = Revoke(target_kind=Kind.TRUST, subject=vouched.key.identity, scope="general")
        revocation = await world.publish(voucher, revoke)
        written[0].append(revocation.id)
        await trio.sleep(resync)
        within = all(world.complete(ids, side) for ids, side in zip(written, sides, strict=True))
        crossed = any(
            world.complete(ids[:1], other) for ids, other in zip(written, sides[::-1], strict=True)
        )
        sim.progress(0.6, "heal")
        healed_at = trio.current_time()
        world.net.heal()
        everything = [vouch.id, *written[0], *written[1]]
        took = await world.wait_complete(everything, timeout_s=4 * resync)
        sim.progress(1.0, "done")
        world.stop(nursery)
    missing = sum(1 for a in everything for m in members if m.index not in world.holders(a))
    sim.figure("attestations written during the split", len(everything) - 1, "")
    sim.figure("time to converge after heal", took if took is not None else float("inf"), "s")
    sim.figure("copies missing after heal", missing, "(node, attestation) pairs")
    sim.axis(
        "heal", "Catching up after the partition heals", y="share of (node, attestation) pairs"
    )
    sim.series("heal/delivered", world.spread_curve(everything, members, since=healed_at))
    sim.claim("the vouch reached everyone before the split", before is not None)
    sim.claim("each side converged on its own writes, and only those, while split",
              within and not crossed)  # fmt: skip
    sim.claim("all converge after the heal, nothing lost", took is not None and missing == 0,
              f"{missing} copies missing" if missing else f"in {took:.1f} s")  # fmt: skip
    sim.claim("the revocation wins everywhere (no tombstone undone)",
              _revoked_everywhere(world, revocation.slot.id))  # fmt: skip
