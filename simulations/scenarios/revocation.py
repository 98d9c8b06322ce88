"""Scenario `revocation`: how fast a withdrawn vouch reaches everyone, and what it does to scores.

Every member vouches for `vouches` random others (`Node.trust`). The most
vouched-for member is the target; one of its vouchers withdraws the vouch
(`Node.revoke`). We ask `viewers` random members' nodes for their scores of
the target (`Node.score`: each node's trust engine, caught up with its own
store's change feed, as the daemon answers) as the revocation spreads.
"""

from __future__ import annotations

import statistics
from collections import Counter

import trio

from protocol.statement import Kind, Trust
from simulations.runner import Run
from simulations.scenarios.common import in_virtual_time, new_world, quantile_time
from simulations.world import Member, World

WARM_UP_S = 10.0
SAMPLE_S = 0.05


def run(sim: Run) -> None:
    """See the module doc."""
    in_virtual_time(lambda: _main(sim), seed=sim.seed)


async def _vouch_everywhere(sim: Run, world: World) -> Counter[int]:
    vouched: Counter[int] = Counter()
    for member in world.members:
        others = [m for m in world.members if m is not member]
        chosen = world.rng.sample(others, min(int(sim.params["vouches"]), len(others)))
        for subject in chosen:
            value = world.rng.randint(30, 100)
            world.note_published(await member.node.trust(subject.identity, value))
        vouched.update(c.index for c in chosen)
    return vouched


async def _mean_score(viewers: list[Member], target: Member) -> float:
    return statistics.fmean([await v.node.score(target.identity) for v in viewers])


async def _main(sim: Run) -> None:
    world = new_world(sim)
    resync = float(sim.params["resync_s"])
    async with trio.open_nursery() as nursery:
        await world.start(nursery)
        await trio.sleep(WARM_UP_S)
        vouched = await _vouch_everywhere(sim, world)
        await world.wait_complete(list(world.published), timeout_s=3 * resync)
        target = world.members[vouched.most_common(1)[0][0]]
        vouchers = [
            m for m in world.members
            if m is not target and any(
                isinstance(a.statement, Trust) and a.statement.subject == target.identity
                for a in await m.node.attestations(issuer=m.identity)
            )
        ]  # fmt: skip
        # The voucher others trust most: its vouch carries the most of the target's trust.
        voucher = max(vouchers, key=lambda m: (vouched[m.index], -m.index))
        pool = [m for m in world.members if m not in (target, voucher)]
        viewers = world.rng.sample(pool, min(int(sim.params["viewers"]), len(pool)))
        before = [await v.node.score(target.identity) for v in viewers]
        sim.progress(0.5, "revoking")
        revocation = await voucher.node.revoke(Kind.TRUST, target.identity, "general")
        world.note_published(revocation)
        started = trio.current_time()
        sim.axis("scores", "Viewers' mean trust in the target as the revocation spreads",
                 y="mean score")  # fmt: skip
        while not world.complete([revocation.id], world.members):
            if trio.current_time() - started > 3 * resync:
                break
            sim.point("scores/mean of the viewers", trio.current_time() - started,
                      await _mean_score(viewers, target))  # fmt: skip
            await trio.sleep(SAMPLE_S)
        after = [await v.node.score(target.identity) for v in viewers]
        sim.point(
            "scores/mean of the viewers", trio.current_time() - started, statistics.fmean(after)
        )
        world.stop(nursery)
    total = len(world.members)
    for share, label in ((0.5, "50"), (0.99, "99"), (1.0, "100")):
        sim.figure(
            f"revocation: time to {label} %", quantile_time(world, revocation.id, share, total), "s"
        )
    sim.figure("viewers' mean score before", statistics.fmean(before), "")
    sim.figure("viewers' mean score after", statistics.fmean(after), "")
    dropped = sum(1 for b, a in zip(before, after, strict=True) if a < b - 1e-12)
    sim.figure("viewers whose score dropped", dropped, f"of {len(viewers)}")
    sim.axis("spread", "The revocation spreading", y="share of nodes holding it")
    sim.series(
        "spread/revocation", world.spread_curve([revocation.id], world.members, since=started)
    )
    sim.claim("the revocation reached every node", world.complete([revocation.id], world.members))
    sim.claim("no viewer's trust in the target rose",
              all(a <= b + 1e-12 for b, a in zip(before, after, strict=True)))  # fmt: skip
