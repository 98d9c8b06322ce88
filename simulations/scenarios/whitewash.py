"""Scenario `whitewash`: a flagged member comes back under a new identity.

A member of an honest community (`nodes` members, preferential attachment,
mutual vouches mostly) is flagged by `flaggers` members. It then drops its
identity and starts over with a fresh one: the flags stay with the old
identity, and so does every vouch it had earned. Each day, with probability
`vouch_chance`, one member it meets vouches for the new identity. We follow
`viewers` members' mean trust in the old identity (before and after the flags)
and in the new one, day by day: whitewashing escapes the flags only by giving
up all earned trust, and regains it only as fast as real members vouch again.
"""

from __future__ import annotations

import statistics

import networkx as nx
import numpy as np

from simulations.runner import Run
from simulations.sybil import Weights, _build, _vouches


def _mean_score(weights: Weights, size: int, viewers: list[int], member: int) -> float:
    return statistics.fmean(_build(weights, size, v).score_node(member) for v in viewers)


def run(sim: Run) -> None:
    """See the module doc."""
    rng = np.random.default_rng(sim.seed)
    n = sim.nodes
    graph = nx.barabasi_albert_graph(n, 4, seed=int(rng.integers(1 << 31)))
    weights = _vouches(graph, rng)
    degrees = np.array([graph.degree(i) for i in range(n)])
    member = int(np.argsort(degrees, kind="stable")[int(0.6 * n)])  # well integrated, not a hub
    others = [i for i in range(n) if i != member]
    viewers = [int(v) for v in rng.choice(others, int(sim.params["viewers"]), replace=False)]
    size = n + 1  # node n is the new identity
    original = _mean_score(weights, size, viewers, member)
    flaggers = rng.choice([i for i in others if i not in viewers], int(sim.params["flaggers"]),
                          replace=False)  # fmt: skip
    flagged_weights = {**weights, **{(int(f), member): -1.0 for f in flaggers}}
    flagged = _mean_score(flagged_weights, size, viewers, member)
    sim.progress(0.2, "flagged")
    fresh_weights = dict(flagged_weights)
    for issuer, subject in [k for k in fresh_weights if k[0] == member]:
        del fresh_weights[(issuer, subject)]  # it stops vouching as the old identity
    days, chance = int(sim.params["days"]), float(sim.params["vouch_chance"])
    scores = [_mean_score(fresh_weights, size, viewers, n)]
    sim.axis("trust", "Mean trust of the viewers, day by day", x="day", y="mean score")
    vouchers = 0
    for day in range(1, days + 1):
        if rng.random() < chance:
            voucher = int(rng.choice(others))
            fresh_weights[(voucher, n)] = 0.5
            fresh_weights[(n, voucher)] = 0.5
            vouchers += 1
            scores.append(_mean_score(fresh_weights, size, viewers, n))
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
