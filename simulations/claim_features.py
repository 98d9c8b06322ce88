"""Per-claim numbers behind `Decisions.claim`, dumped per cell (issue 22, 2026-12-02c).

For every sampled genuine claim and every farm claim of a study cell
(`simulations.community_study.build`), the default engine's own numbers: the
subject's score and seeds' median (`node.trust.decisions.seed_median`), the
claim line, each certifier's score and seeds' median, whether the certifiers
are street-mates, and the vertex-disjoint chain counts to the top-k certifiers
(by score), through members in the certifier gate. Every claim rule studied in
`community-holdout-summary-2026-12-02c.md` is a function of these numbers, so
candidate rules are compared on the very same cells without re-solving; the
engine's own `claim()` answer is recorded beside them, and `evaluate` must
reproduce it for the default rule (checked by `main`).

Run: `python -m simulations.claim_features --seeds 0,1 [--size 1000]
[--shapes ...] [--attacks ...] [--claim-sample 200] --out PATH.json`
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from node.trust.decisions import seed_median
from node.trust.engine import DecisionParameters
from node.trust.flow import independent_paths
from simulations.community import SHAPES, community
from simulations.community_study import ATTACKS, CLAIM, ENGINES, Scenario, build

__all__ = ["Claim", "Rule", "cell_features", "evaluate"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One claim's numbers, scores as fractions of the support's median."""

    genuine: bool
    certifiers: int  # certifiers the walk reaches
    mates: int  # of them, street-mates of the subject (genuine claims)
    score: float  # subject score / median
    seeds: float  # subject seeds' median / its score (0 if it scores 0)
    line: float  # claim line / median
    cert_scores: tuple[float, ...]  # certifier score / median, best first
    cert_seeds: tuple[float, ...]  # certifier seeds' median / median, same order
    top: tuple[int, ...]  # disjoint chains to the top-k certifiers, k = 1..certifiers
    accepted: bool  # the engine's claim() with the defaults
    own: bool = False  # the viewer certified it (accepted by any rule)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A candidate claim rule over `Claim` numbers (the defaults: 2026-12-02c)."""

    seeds: float = 0.5  # on the line: seeds' median >= seeds x score
    backed: float = 0.2  # backed and anchored routes: subject >= backed x median
    backers: float | None = 0.9  # backed: `independent` certifiers >= backers x median
    # anchored: one certifier >= backers x median with seeds' median >= anchor x
    # median, the other chains to any certifier in the gate (None: the 'b' rule)
    anchor: float | None = 0.8
    independent: int = 2


def _chains(claim: Claim, threshold: float) -> int:
    """Disjoint chains to the certifiers scoring >= threshold (a top-k set)."""
    k = sum(s >= threshold for s in claim.cert_scores)
    return claim.top[k - 1] if k else 0


def evaluate(claim: Claim, rule: Rule) -> bool:
    """Does `rule` accept the claim? (`Decisions.claim` on the dumped numbers)

    The anchored route is exact when the anchor is the best-scored certifier
    or the claim has two certifiers (every claim of the study but the
    insider's farm claims, whose chains all pass the insider); otherwise the
    anchor's own reachability is not dumped and it is assumed.
    """
    if claim.own:
        return True
    count = claim.top[-1] if claim.top else 0
    if count < rule.independent:
        return False
    if claim.score >= claim.line and claim.score > 0.0 and claim.seeds >= rule.seeds:
        return True
    if rule.backers is None or claim.score < rule.backed or claim.score <= 0.0:
        return False
    if _chains(claim, rule.backers) >= rule.independent:
        return True
    if rule.anchor is None:
        return False
    return any(
        s >= rule.backers and m >= rule.anchor and (i > 0 or claim.top[0] >= 1)
        for i, (s, m) in enumerate(zip(claim.cert_scores, claim.cert_seeds, strict=True))
    )


def cell_features(scenario: Scenario, *, claim_sample: int, street: Sequence[int]) -> list[Claim]:
    """Every sampled genuine and every farm claim's numbers in one cell."""
    ids = scenario.ids
    engine = ENGINES["new"](ids[scenario.viewer], scenario.attestations)
    walk = engine.walk()
    scored = engine._scored("general")
    median = scored.median
    parameters: DecisionParameters = engine.decision_parameters
    line = parameters.threshold(
        median, scored.spread, floor=parameters.claim, width=parameters.claim_spread
    )
    assert scored.consensus is not None
    medians = seed_median(scored.consensus)
    allowed = engine._standing("general", parameters.certifier, None)
    honest = [i for i in range(scenario.honest) if i != scenario.viewer]
    if claim_sample and len(honest) > claim_sample:
        step = len(honest) / claim_sample
        honest = [honest[int(k * step)] for k in range(claim_sample)]
    index = {identity: i for i, identity in enumerate(ids)}
    out: list[Claim] = []
    for x in honest + list(range(scenario.honest, len(ids))):
        node = walk.node(ids[x])
        value = float(scored.values[node]) if node is not None else 0.0
        certs = engine.certifiers(ids[x], CLAIM)
        nodes = [n for c in certs if (n := walk.node(c)) is not None]
        order = sorted(range(len(nodes)), key=lambda i: -float(scored.values[nodes[i]]))
        nodes = [nodes[i] for i in order]
        reached = [certs[i] for i in range(len(certs)) if walk.node(certs[i]) is not None]
        reached = [reached[i] for i in order]
        top = tuple(
            independent_paths(walk, nodes[: k + 1], min_weight=0.0, allowed=allowed).count
            for k in range(len(nodes))
        )
        genuine = x < scenario.honest
        out.append(
            Claim(
                genuine=genuine,
                certifiers=len(nodes),
                mates=sum(genuine and street[index[c]] == street[x] for c in reached),
                score=value / median,
                seeds=float(medians[node]) / value if node is not None and value > 0 else 0.0,
                line=line / median,
                cert_scores=tuple(float(scored.values[n]) / median for n in nodes),
                cert_seeds=tuple(float(medians[n]) / median for n in nodes),
                top=top,
                accepted=engine.claim(ids[x], CLAIM).accepted,
                own=ids[scenario.viewer] in certs,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Dump every cell's claims as JSON; check `evaluate` reproduces the engine."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--claim-sample", type=int, default=200)
    parser.add_argument("--out", required=True)
    arguments = parser.parse_args(argv)
    cells: list[dict[str, object]] = []
    mismatches = 0
    started = time.perf_counter()
    for shape in arguments.shapes.split(","):
        for attack in arguments.attacks.split(","):
            for seed in (int(s) for s in arguments.seeds.split(",")):
                t0 = time.perf_counter()
                scenario = build(shape, arguments.size, attack, seed)
                street = community(shape, arguments.size, seed).street
                claims = cell_features(scenario, claim_sample=arguments.claim_sample, street=street)
                mismatches += sum(evaluate(c, Rule()) != c.accepted for c in claims)
                cells.append(
                    {
                        "size": arguments.size, "shape": shape, "attack": attack, "seed": seed,
                        "attack_edges": scenario.attack_edges,
                        "claims": [asdict(c) for c in claims],
                    }
                )  # fmt: skip
                print(
                    f"... {arguments.size} {shape} {attack} seed {seed} "
                    f"{time.perf_counter() - t0:.1f} s, mismatches so far {mismatches}",
                    file=sys.stderr, flush=True,
                )  # fmt: skip
                with open(arguments.out, "w") as fh:
                    json.dump({"cells": cells}, fh)
    print(f"{len(cells)} cells, {time.perf_counter() - started:.0f} s, mismatches {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
