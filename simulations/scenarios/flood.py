"""Scenario `flood`: an identity farm floods the community; what do honest nodes keep?

`nodes` honest members vouch for each other (`vouches` each); `attack_edges`
of them are fooled into vouching for a farm identity. Then one attacking
member pushes `farm` x `per_identity` valid attestations from freshly made
farm identities, while honest members keep writing. The same run is made
twice: with the relay policy (a farm identity that capacity flow from the
node does not accept may store at most `quota` attestations) and without it.
Figures: farm attestations stored per honest node, farm bytes each received,
and whether honest attestations still reached every honest node.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

import trio

from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.statement import Trust
from simulations.runner import Run
from simulations.scenarios.common import in_virtual_time
from simulations.world import NetworkParameters, World

WARM_UP_S = 10.0


def run(sim: Run) -> None:
    """See the module doc."""
    for number, quota in enumerate((int(sim.params["quota"]), None)):
        label = "with quotas" if quota is not None else "without quotas"
        in_virtual_time(lambda quota=quota, label=label: _main(sim, quota, label), seed=sim.seed)  # type: ignore[misc]
        sim.progress((number + 1) / 2, label)


def _spam(world: World, farm: list[IdentityKey], per_identity: int) -> list[Attestation]:
    """`per_identity` valid attestations by each farm identity, about the farm."""
    made = []
    for key in farm:
        for n in range(per_identity):
            subject = world.rng.choice(farm).identity
            statement = Trust(subject=subject, context=f"f{n}", value=100)
            body = AttestationBody(
                issuer=key.identity, issued_at_ms=world.clock_ms() - n, statement=statement
            )
            made.append(sign_attestation(body, key))
    return made


async def _main(sim: Run, quota: int | None, label: str) -> None:
    parameters = replace(NetworkParameters.from_params(sim.params), relay_quota=quota)
    world = World(seed=sim.seed, parameters=parameters)
    honest = world.add_members(sim.nodes)
    attacker = world.add_members(1)[0]
    resync = float(sim.params["resync_s"])
    farm = [IdentityKey.from_seed((sim.seed * 7 + 10_000_000 + i).to_bytes(32, "big"))
            for i in range(int(sim.params["farm"]))]  # fmt: skip
    async with trio.open_nursery() as nursery:
        await world.start(nursery)
        await trio.sleep(WARM_UP_S)
        for member in honest:
            chosen = world.rng.sample(
                [m for m in honest if m is not member], int(sim.params["vouches"])
            )
            await member.gossip.publish(
                [member.sign(Trust(subject=c.key.identity, value=70)) for c in chosen]
            )
        for member in world.rng.sample(honest, int(sim.params["attack_edges"])):
            await member.gossip.publish([member.sign(Trust(subject=farm[0].identity, value=60))])
        await trio.sleep(2 * resync)  # vouches spread; relay policies see them
        spam = _spam(world, farm, int(sim.params["per_identity"]))
        received_before = [m.gossip.payload_bytes_received for m in honest]
        for start in range(0, len(spam), 500):
            await attacker.gossip.publish(spam[start : start + 500])
        writes = []
        for n in range(10):
            author, subject = world.rng.choice(honest), world.rng.choice(honest)
            writes.append(
                (
                    await world.publish(
                        author, Trust(subject=subject.key.identity, context=f"h{n}", value=40)
                    )
                ).id
            )
            await trio.sleep(1.0)
        delivered = await world.wait_complete(writes, members=honest, timeout_s=3 * resync)
        await trio.sleep(2 * resync)
        world.stop(nursery)
    stored = [sum(m.store.count_by_issuer([k.identity for k in farm]).values()) for m in honest]
    received = [
        m.gossip.payload_bytes_received - b for m, b in zip(honest, received_before, strict=True)
    ]
    sent = f"of {len(spam)} sent"
    sim.figure(f"farm stored per honest node, mean ({label})", statistics.fmean(stored), "", sent)
    sim.figure(f"farm stored per honest node, max ({label})", max(stored), "", sent)
    sim.figure(f"bytes received per honest node in the flood ({label})",
               statistics.fmean(received), "bytes")  # fmt: skip
    sim.claim(f"honest attestations reached every honest node in the flood ({label})",
              delivered is not None)  # fmt: skip
    if quota is not None:
        cap = len(farm) * quota + int(sim.params["per_identity"]) * int(sim.params["attack_edges"])
        sim.claim(
            "with quotas, no honest node stores the whole flood",
            max(stored) < len(spam),
            f"at most {max(stored)} of {len(spam)} (quota x identities + what flow accepts: {cap})",
        )
