"""Scenario `sybil`: an identity farm attached by a few attack edges, against every metric.

A thin front for `simulations.sybil` (the trust issue's study): one honest
community (`graph`: BA, HK, SBM or WS, 1000 members), one farm (`farm`: dense
or tree, 1000 identities) attached by 10 attack edges to `random` or
`targeted` victims, seen from `viewers` viewers. The community size is fixed
by the study (`--nodes` is not used).
"""

from __future__ import annotations

from simulations.runner import Run
from simulations.sybil import ATTACK_EDGES, run_cell


def run(sim: Run) -> None:
    """See the module doc."""
    cells, _ = run_cell(
        str(sim.params["graph"]), str(sim.params["farm"]), str(sim.params["victims"]),
        seeds=1, viewers=int(sim.params["viewers"]),
    )  # fmt: skip
    sim.axis("auc", "How well each metric ranks honest members above farm identities",
             x="metric (0 walk, 1 walk visits, 2 per-vouch, 3 flow, 4 flow 800, 5 introducers)",
             y="AUC (1.0 = every honest member above every farm identity)")  # fmt: skip
    for number, cell in enumerate(cells):
        sim.figure(f"AUC ({cell.metric})", cell.auc_mean, "", "mean over viewers")
        sim.figure(f"farm members accepted per attack edge ({cell.metric})",
                   cell.per_edge_mean, "", f"{ATTACK_EDGES} attack edges")  # fmt: skip
        sim.point("auc/mean over viewers", number, cell.auc_mean)
        sim.point("auc/worst viewer", number, cell.auc_worst)
    walk = next(c for c in cells if c.metric == "walk")
    sim.claim("the walk's farm mass stays within the attack-edge bound F(1-a)/a",
              walk.bound_holds)  # fmt: skip
    if sim.params["victims"] == "random":
        sim.claim("the walk ranks honest members above the farm (AUC >= 0.9)",
                  walk.auc_worst >= 0.9, f"worst viewer {walk.auc_worst:.3f}")  # fmt: skip
