"""Scenario `whitewash`: a flagged member comes back under a new identity.

A member of an honest community (`nodes` members, preferential attachment,
mutual vouches mostly) is flagged by `flaggers` members. It then drops its
identity and starts over with a fresh one: the flags stay with the old
identity, and so does every vouch it had earned. Each day, with probability
`vouch_chance`, one member it meets vouches for the new identity. We follow
`viewers` members' mean trust in the old identity (before and after the flags)
and in the new one, day by day: whitewashing escapes the flags only by giving
up all earned trust, and regains it only as fast as real members vouch again.

Every member is a `Node` (`simulations.members`): vouches, flags and the old
identity's withdrawals go through `Node.trust`/`distrust`/`revoke`, and the
scores are the viewers' `Node.score` answers (the consensus score members run).
"""

from __future__ import annotations

import statistics

import networkx as nx
import numpy as np

from simulations.members import Members, with_members
from simulations.runner import Run
from simulations.sybil import _vouches


async def _mean_score(members: Members, viewers: list[int], member: int) -> float:
    identity = members.identities[member]
    return statistics.fmean([await (await members.viewer(v)).score(identity) for v in viewers])


def run(sim: Run) -> None:
    """See the module doc."""
    with_members(lambda: _main(sim))


async def _main(sim: Run) -> None:
    rng = np.random.default_rng(sim.seed)
    n = sim.nodes
    graph = nx.barabasi_albert_graph(n, 4, seed=int(rng.integers(1 << 31)))
    weights = _vouches(graph, rng)
    degrees = np.array([graph.degree(i) for i in range(n)])
    member = int(np.argsort(degrees, kind="stable")[int(0.6 * n)])  # well integrated, not a hub
    others = [i for i in range(n) if i != member]
    viewers = [int(v) for v in rng.choice(others, int(sim.params["viewers"]), replace=False)]
    members = Members(n + 1, seed=sim.seed)  # member n is the new identity
    await members.say_all(weights.items())
    original = await _mean_score(members, viewers, member)
    flaggers = rng.choice([i for i in others if i not in viewers], int(sim.params["flaggers"]),
                          replace=False)  # fmt: skip
    # A flagger that vouched for the member changes its mind: the flag replaces the vouch.
    await members.say_all(((int(f), member), -1.0) for f in flaggers)
    flagged = await _mean_score(members, viewers, member)
    sim.progress(0.2, "flagged")
    for subject in sorted(s for i, s in weights if i == member):
        await members.withdraw(member, subject)  # it stops vouching as the old identity
    days, chance = int(sim.params["days"]), float(sim.params["vouch_chance"])
    scores = [await _mean_score(members, viewers, n)]
    sim.axis("trust", "Mean trust of the viewers, day by day", x="day", y="mean score")
    vouchers = 0
    for day in range(1, days + 1):
        if rng.random() < chance:
            voucher = int(rng.choice(others))
            await members.say(voucher, n, 0.5)
            await members.say(n, voucher, 0.5)
            vouchers += 1
            scores.append(await _mean_score(members, viewers, n))
        else:
            scores.append(scores[-1])
        sim.progress(0.2 + 0.8 * day / days, f"day {day}")
    for day, score in enumerate(scores):
        sim.point("trust/new identity", day, score)
        sim.point("trust/old identity, flagged", day, flagged)
        sim.point("trust/old identity, before the flags", day, original)
    caught_up = next((d for d, s in enumerate(scores) if s >= flagged), None)
    sim.figure("old identity before the flags", original, "mean score")
    sim.figure("old identity after the flags", flagged, "mean score")
    sim.figure("new identity on day 0", scores[0], "mean score")
    sim.figure(f"new identity on day {days}", scores[-1], "mean score", f"{vouchers} vouches")
    sim.figure("days until the new identity matches the flagged one",
               caught_up if caught_up is not None else float("inf"), "days")  # fmt: skip
    sim.claim("a new identity starts from nothing", scores[0] == 0.0)
    sim.claim("whitewashing does not pay at once: day 0 is below the flagged score",
              scores[0] < flagged, f"{scores[0]:.3f} < {flagged:.3f}")  # fmt: skip
