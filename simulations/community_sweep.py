"""The community study's knobs, one curve each, and the published anchors beside them.

For each scenario of `simulations.community_study` (1 000 members by
default), from the same engine:

* `accept` (accepted(): score >= accept x the support's median score):
  honest members accepted vs farm members accepted per attack edge;
* `claim` (claim(): subject and certifiers >= claim x median): genuine
  claims accepted (two street-mates) vs farm claims accepted per attack edge;
* `seeds` and `epsilon` (the consensus score): AUC and farm members above
  the honest 10th percentile per attack edge;
* the score's own curve: farm members above the threshold that accepts
  50 / 80 / 90 / 95 / 99 % of honest members, per metric;
* anchors, computed on the same graph: the old default (the viewer's walk
  alone, reach probability), plain PPR (visits), SybilRank from the viewer
  (written from Cao et al., NSDI 2012: ceil(log2 n) steps of the
  degree-normalised walk on the symmetrised graph, no restart), Advogato
  flow with Levien's schedule scaled to the community (1000, 250, 250, 62,
  15, 5, 2, 1 per 1 000 members), and the old derived-schedule flow.

Run: `python -m simulations.community_sweep [--size 1000] [--seeds 1]
[--out simulations/results/community-DATE]` (writes a .txt table, a .json
and a .png plot).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from node.trust import FlowParameters, TrustEngine, accepted_members
from node.trust.consensus import ConsensusParameters
from node.trust.engine import DecisionParameters
from simulations.community import SHAPES
from simulations.community_study import CLAIM, NOW, FloatArray, Scenario, auc, build

__all__ = ["ACCEPT", "CLAIMS", "EPSILONS", "SEEDS", "sweep_scenario"]

ACCEPT = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
CLAIMS = (0.2, 0.3, 0.4, 0.5, 0.6)
SEEDS = (0, 8, 16, 32, 64, 128)
EPSILONS = (0.0005, 0.002, 0.01, 0.05)
HONEST_SHARES = (0.5, 0.8, 0.9, 0.95, 0.99)
ADVOGATO = (1000, 250, 250, 62, 15, 5, 2, 1)


def _masks(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    total = len(scenario.ids)
    honest = np.zeros(total, dtype=bool)
    honest[: scenario.honest] = True
    honest[scenario.viewer] = False
    farm = np.zeros(total, dtype=bool)
    farm[scenario.honest :] = True
    return honest, farm


def _graded(vector: FloatArray, scenario: Scenario) -> dict[str, float]:
    honest, farm = _masks(scenario)
    h, f = vector[honest], vector[farm]
    out = {"auc": auc(h, f)}
    for share in HONEST_SHARES:
        threshold = float(np.quantile(h, 1.0 - share))
        above = np.count_nonzero(f >= threshold) if threshold > 0 else np.count_nonzero(f > 0)
        out[f"farm_per_edge_at_{int(share * 100)}"] = above / scenario.attack_edges
    return out


def _aligned(engine: TrustEngine, scenario: Scenario, values: FloatArray) -> FloatArray:
    walk = engine.walk()
    out = np.zeros(len(scenario.ids))
    for k, identity in enumerate(scenario.ids):
        node = walk.node(identity)
        if node is not None:
            out[k] = values[node]
    return out


def _sybilrank(engine: TrustEngine) -> FloatArray:
    """SybilRank from the viewer alone (Cao et al. 2012), as written in the paper."""
    walk = engine.walk()
    weights = walk.weight_matrix()
    graph = ((weights + weights.T) > 0).astype(float).tocsr()
    degree = np.asarray(graph.sum(axis=1)).ravel()
    step = sp.diags(1.0 / np.maximum(degree, 1.0)) @ graph
    trust = np.zeros(graph.shape[0])
    trust[walk.viewer] = 1.0
    for _ in range(math.ceil(math.log2(max(graph.shape[0], 2)))):
        trust = step.T @ trust
    result: FloatArray = trust / np.maximum(degree, 1.0)
    return result


def _meritrank(engine: TrustEngine) -> FloatArray | None:
    """meritrank-python's ranks from the viewer (GPL: a benchmark comparator only,
    imported if installed, never a dependency). Monte-Carlo: seeded."""
    try:
        import networkx as nx
        from meritrank_python.rank import IncrementalMeritRank  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        return None
    import random

    random.seed(0)
    walk = engine.walk()
    coo = walk.weight_matrix().tocoo()
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(walk.identities)))
    graph.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(),
                                      strict=True))  # fmt: skip
    rank = IncrementalMeritRank(graph)
    rank.calculate(walk.viewer, num_walks=10000)
    ranks = rank.get_ranks(walk.viewer)
    out = np.zeros(len(walk.identities))
    for node, value in ranks.items():
        out[int(node)] = float(value)
    return out


def _set_figures(
    chosen: frozenset[int], engine: TrustEngine, scenario: Scenario
) -> dict[str, float]:
    walk = engine.walk()
    yes = np.zeros(len(walk.identities))
    yes[list(chosen)] = 1.0
    aligned = _aligned(engine, scenario, yes)
    honest, farm = _masks(scenario)
    return {
        "honest_pct": 100.0 * float(aligned[honest].mean()),
        "farm_per_edge": float(aligned[farm].sum()) / scenario.attack_edges,
    }


def _claims(engine: TrustEngine, scenario: Scenario, sample: int) -> dict[str, float]:
    ids = scenario.ids
    honest = [ids[i] for i in range(scenario.honest) if i != scenario.viewer]
    step = max(1, len(honest) // sample)
    genuine = honest[::step]
    farm = ids[scenario.honest :]
    accepted = sum(engine.claim(x, CLAIM).accepted for x in genuine)
    fake = sum(engine.claim(x, CLAIM).accepted for x in farm)
    return {
        "genuine_pct": 100.0 * accepted / len(genuine),
        "farm_per_edge": fake / scenario.attack_edges,
    }


def sweep_scenario(scenario: Scenario, *, claim_sample: int = 200) -> dict[str, object]:
    """Every knob's curve and every anchor on one scenario."""
    viewer = scenario.ids[scenario.viewer]
    engine = TrustEngine(viewer, now_ms=NOW, attestations=scenario.attestations)
    walk = engine.walk()
    scores = _aligned(engine, scenario, engine._scored("general").values)
    result: dict[str, object] = {"shape": scenario.shape, "attack": scenario.attack}
    result["score"] = _graded(scores, scenario)
    accept_curve = []
    for fraction in ACCEPT:
        engine.decision_parameters = DecisionParameters(accept=fraction, accept_spread=None)
        accept_curve.append({"accept": fraction, **_set_figures(
            frozenset(walk.node(i) for i in engine.accepted()) - {None},  # type: ignore[arg-type]
            engine, scenario)})  # fmt: skip
    result["accept"] = accept_curve
    claim_curve = []
    for fraction in CLAIMS:
        engine.decision_parameters = DecisionParameters(claim=fraction, claim_spread=None)
        claim_curve.append({"claim": fraction, **_claims(engine, scenario, claim_sample)})
    result["claim"] = claim_curve
    seeds_curve = []
    for count in SEEDS:
        other = TrustEngine(
            viewer, now_ms=NOW, attestations=scenario.attestations,
            consensus_parameters=ConsensusParameters(seeds=count),
        )  # fmt: skip
        vector = _aligned(other, scenario, other._scored("general").values)
        seeds_curve.append({"seeds": count, **_graded(vector, scenario)})
    result["seeds"] = seeds_curve
    epsilon_curve = []
    for epsilon in EPSILONS:
        other = TrustEngine(
            viewer, now_ms=NOW, attestations=scenario.attestations,
            consensus_parameters=ConsensusParameters(epsilon=epsilon),
        )  # fmt: skip
        vector = _aligned(other, scenario, other._scored("general").values)
        epsilon_curve.append({"epsilon": epsilon, **_graded(vector, scenario)})
    result["epsilon"] = epsilon_curve
    anchors: dict[str, object] = {
        "walk (old default)": _graded(_aligned(engine, scenario, walk.scores_all()), scenario),
        "PPR visits": _graded(_aligned(engine, scenario, np.asarray(walk.visits())), scenario),
        "SybilRank": _graded(_aligned(engine, scenario, _sybilrank(engine)), scenario),
    }
    merit = _meritrank(engine)
    if merit is not None:
        anchors["meritrank-python 0.2.10"] = _graded(_aligned(engine, scenario, merit), scenario)
    scale = scenario.honest / 1000.0
    schedule = tuple(max(1, round(c * scale)) for c in ADVOGATO)
    advogato = accepted_members(walk, FlowParameters(capacities=schedule)).accepted
    anchors["Advogato flow (scaled schedule)"] = _set_figures(advogato, engine, scenario)
    anchors["flow (old default)"] = _set_figures(accepted_members(walk).accepted, engine, scenario)
    result["anchors"] = anchors
    return result


def _format(results: Sequence[dict[str, object]]) -> str:
    lines: list[str] = []
    for r in results:
        lines.append(f"== {r['shape']} / {r['attack']}")
        s = r["score"]
        assert isinstance(s, dict)
        lines.append("  score (consensus, defaults): AUC {auc:.3f}; farm per edge above the "
                     "threshold accepting 50/80/90/95/99 % honest: ".format(**s)
                     + " / ".join(f"{s[f'farm_per_edge_at_{int(q * 100)}']:.1f}"
                                  for q in HONEST_SHARES))  # fmt: skip
        anchors = r["anchors"]
        assert isinstance(anchors, dict)
        for name, a in anchors.items():
            if "auc" in a:
                lines.append(f"  anchor {name:32} AUC {a['auc']:.3f}; farm/edge at 50..99 %: "
                             + " / ".join(f"{a[f'farm_per_edge_at_{int(q * 100)}']:.1f}"
                                          for q in HONEST_SHARES))  # fmt: skip
            else:
                lines.append(
                    f"  anchor {name:32} honest {a['honest_pct']:5.1f} %, "
                    f"farm {a['farm_per_edge']:.1f} per edge"
                )
        for key, label in (("accept", "accept"), ("claim", "claim")):
            curve = r[key]
            assert isinstance(curve, list)
            cells = []
            for point in curve:
                share = point.get("honest_pct", point.get("genuine_pct"))
                cells.append(f"{point[key]:.1f}: {share:.1f} % / {point['farm_per_edge']:.1f}")
            lines.append(f"  {label:7} (x median -> honest % / farm per edge): " + "; ".join(cells))
        for key in ("seeds", "epsilon"):
            curve = r[key]
            assert isinstance(curve, list)
            cells = [f"{p[key]}: {p['auc']:.3f} / {p['farm_per_edge_at_90']:.1f}" for p in curve]
            lines.append(f"  {key:7} (-> AUC / farm per edge at 90 %): " + "; ".join(cells))
    return "\n".join(lines)


def _plot(results: Sequence[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    colours = dict(zip(SHAPES, ("C0", "C1", "C2", "C3"), strict=True))
    marks = {"targeted": "o", "hubs": "s", "insider": "^", "random": "x"}
    for r in results:
        shape, attack = str(r["shape"]), str(r["attack"])
        style = {"color": colours.get(shape, "k"), "marker": marks.get(attack, ".")}
        accept = r["accept"]
        claim = r["claim"]
        assert isinstance(accept, list)
        assert isinstance(claim, list)
        axes[0].plot([p["farm_per_edge"] for p in accept], [p["honest_pct"] for p in accept],
                     label=f"{shape}/{attack}", **style)  # fmt: skip
        axes[1].plot([p["farm_per_edge"] for p in claim], [p["genuine_pct"] for p in claim],
                     **style)  # fmt: skip
        seeds = r["seeds"]
        assert isinstance(seeds, list)
        axes[2].plot([p["seeds"] for p in seeds], [p["auc"] for p in seeds], **style)
        anchors = r["anchors"]
        assert isinstance(anchors, dict)
        for name, mark in (("Advogato flow (scaled schedule)", "*"), ("flow (old default)", "D")):
            a = anchors[name]
            axes[0].scatter([a["farm_per_edge"]], [a["honest_pct"]], marker=mark,
                            color=style["color"], s=70, alpha=0.5)  # fmt: skip
    axes[0].axvline(2, color="grey", ls=":")
    axes[0].axhline(90, color="grey", ls=":")
    axes[0].set(
        xlabel="farm members accepted per attack edge",
        ylabel="honest accepted %",
        title="accepted(): knob `accept` (stars: Advogato scaled, diamonds: old flow)",
    )
    axes[0].set_xscale("symlog", linthresh=1.0)  # fmt: skip
    axes[1].axvline(1, color="grey", ls=":")
    axes[1].axhline(95, color="grey", ls=":")
    axes[1].set(xlabel="farm claims accepted per attack edge", ylabel="genuine claims accepted %",
                title="claim(): knob `claim`")  # fmt: skip
    axes[1].set_xscale("symlog", linthresh=1.0)
    axes[2].axhline(0.95, color="grey", ls=":")
    axes[2].set(xlabel="seeds (0: the viewer alone)", ylabel="AUC honest vs farm",
                title="consensus score: knob `seeds`")  # fmt: skip
    axes[2].set_xscale("symlog", linthresh=8.0)
    axes[2].set_xlim(0, 150)
    axes[0].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep, print the table, write .txt/.json/.png if `--out` is given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--attacks", default="targeted,hubs,insider")
    parser.add_argument("--out", default="")
    parser.add_argument("--replot", default="", help="redraw the .png of a saved .json")
    arguments = parser.parse_args(argv)
    if arguments.replot:
        source = Path(arguments.replot)
        _plot(json.loads(source.read_text()), source.with_suffix(".png"))
        return 0
    started = time.perf_counter()
    results = []
    for shape in arguments.shapes.split(","):
        for attack in arguments.attacks.split(","):
            for seed in range(arguments.seeds):
                print(f"... {shape} {attack} seed {seed}", file=sys.stderr)
                scenario = build(shape, arguments.size, attack, seed)
                results.append({"seed": seed, **sweep_scenario(scenario)})
    text = _format(results) + f"\n\n{arguments.size} members, {time.perf_counter() - started:.0f} s"
    print(text)
    if arguments.out:
        out = Path(arguments.out)
        out.with_suffix(".txt").write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
        _plot(results, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
