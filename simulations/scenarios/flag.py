"""Scenario `flag`: what one flag, the viewer's own wall and a farm's mass flagging do.

From `simulations.sybil` on one honest community (`graph`) with a dense farm:
`flag drop` is the share of a well-vouched member's score that one flag from a
trusted member removes (by design at most 20 %); `wall` is what is left of a
member's score once the viewer itself distrusts it (by design nothing);
`curse` is how much the farm gains in AUC when its 1000 identities flag 100
honest members (by design flags from unreached identities weigh nothing).
"""

from __future__ import annotations

from simulations.runner import Run
from simulations.sybil import run_cell


def run(sim: Run) -> None:
    """See the module doc."""
    _, flags = run_cell(str(sim.params["graph"]), "dense", "random", seeds=1,
                        viewers=int(sim.params["viewers"]))  # fmt: skip
    drop, wall, curse = flags["flag_drop"], flags["wall_ratio"], flags["curse_auc_drop"]
    sim.figure("one flag: share of the score removed (worst)", drop, "")
    sim.figure("own wall: share of the score left (worst)", wall, "")
    sim.figure("farm flagging 100 members: AUC lost (worst)", curse, "")
    sim.claim("one flag removes at most 20 % of a member's score", drop <= 0.2 + 1e-9,
              f"{drop:.1%}")  # fmt: skip
    sim.claim("the viewer's own distrust leaves nothing", wall <= 1e-9, f"{wall:.2e}")
    sim.claim("a farm's mass flagging barely moves honest scores", curse <= 0.01, f"{curse:.4f}")
