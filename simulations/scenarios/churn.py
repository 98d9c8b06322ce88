"""Scenario `churn`: members keep leaving and coming back while others write.

For each churn rate in `rates` (the share of members that leave per minute), a
fresh community runs for `duration_s`: leavers crash (their connections break)
and come back `downtime_s` later with their store — or, for a share `fresh` of
them, never come back and a brand-new member (new identity, empty store) joins
instead. Every `write_interval_s` a random live member publishes an
attestation. Every 5 s we record the share of live members that are up to
date (hold every attestation published more than 5 s earlier). When churn
stops, every live member must catch up within two anti-entropy periods.
"""

from __future__ import annotations

import statistics

import trio

from protocol.attestation import AttestationId
from protocol.statement import Trust
from simulations.runner import Run
from simulations.scenarios.common import in_virtual_time, new_world
from simulations.world import Member, World

WARM_UP_S = 10.0
SAMPLE_S = 5.0
LAG_S = 5.0


def run(sim: Run) -> None:
    """See the module doc."""
    rates = [float(r) for r in str(sim.params["rates"]).split(",") if r.strip()]
    sim.axis("up to date", "Live members holding everything older than 5 s",
             y="share of live members")  # fmt: skip
    for number, rate in enumerate(rates):
        in_virtual_time(lambda rate=rate: _one_rate(sim, rate), seed=sim.seed)  # type: ignore[misc]
        sim.progress((number + 1) / len(rates), f"rate {rate:g}/min")


def _up_to_date(world: World, written: list[tuple[AttestationId, float]], now: float) -> float:
    old = [a for a, at in written if now - at >= LAG_S]
    live = world.live
    if not live:
        return 0.0
    fresh = sum(1 for m in live if all(m.index in world.holders(a) for a in old))
    return fresh / len(live)


class _Churn:
    """Who is away, and when they come back."""

    def __init__(self, sim: Run, world: World, rate: float) -> None:
        self.world = world
        self.per_second = rate * len(world.members) / 60
        self.downtime = float(sim.params["downtime_s"])
        self.fresh = float(sim.params["fresh"])
        self.due = 0.0
        self.returns: list[tuple[float, Member]] = []
        self.joined = 0

    async def step(self, nursery: trio.Nursery, now: float) -> None:
        self.due += self.per_second
        while self.due >= 1:
            self.due -= 1
            candidates = self.world.live
            if len(candidates) > 2:
                leaver = self.world.rng.choice(candidates)
                self.world.crash(leaver)
                if self.world.rng.random() < self.fresh:
                    newcomer = self.world.add_members(1)
                    await self.world.start(nursery, newcomer)
                    self.joined += 1
                else:
                    self.returns.append((now + self.downtime, leaver))
        for back in [m for t, m in self.returns if t <= now]:
            self.world.restart(back)
        self.returns = [(t, m) for t, m in self.returns if t > now]

    def end(self) -> None:
        for _, member in self.returns:
            self.world.restart(member)
        self.returns = []


async def _one_rate(sim: Run, rate: float) -> None:
    world = new_world(sim)
    label = f"{rate:g}/min"
    written: list[tuple[AttestationId, float]] = []
    samples: list[float] = []
    churn = _Churn(sim, world, rate)
    async with trio.open_nursery() as nursery:
        await world.start(nursery)
        await trio.sleep(WARM_UP_S)
        start = trio.current_time()
        next_write = next_sample = 0.0
        while (elapsed := trio.current_time() - start) < float(sim.params["duration_s"]):
            await churn.step(nursery, elapsed)
            if elapsed >= next_write:
                author, subject = world.rng.choice(world.live), world.rng.choice(world.members)
                statement = Trust(
                    subject=subject.key.identity, context=f"w{len(written)}", value=30
                )
                attestation = await world.publish(author, statement)
                written.append((attestation.id, trio.current_time()))
                next_write += float(sim.params["write_interval_s"])
            if elapsed >= next_sample:
                samples.append(_up_to_date(world, written, trio.current_time()))
                sim.point(f"up to date/{label}", elapsed, samples[-1])
                next_sample += SAMPLE_S
            await trio.sleep(1.0)
        churn.end()
        limit = 2 * float(sim.params["resync_s"])
        took = await world.wait_complete([a for a, _ in written], timeout_s=limit + 20)
        world.stop(nursery)
    sim.figure(f"up to date, mean ({label})", statistics.fmean(samples), "share of live members")
    sim.figure(f"up to date, worst ({label})", min(samples), "share of live members")
    sim.figure(f"fresh members joined ({label})", churn.joined, "")
    caught_up = took if took is not None else float("inf")
    sim.figure(f"catch-up after churn stops ({label})", caught_up, "s")
    sim.claim(
        f"at {label}, every live member caught up within two anti-entropy periods",
        took is not None and took <= limit,
        f"{caught_up:.1f} s (limit {limit:.0f} s)",
    )
