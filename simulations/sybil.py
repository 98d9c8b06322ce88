"""Scenario `sybil`: how much trust an identity farm gets, per metric (research note §6).

An honest community (Barabasi-Albert, Holme-Kim, a stochastic block model, and
Watts-Strogatz as the known hard, slow-mixing case) is joined by an identity
farm (dense: BA; or sparse: a random tree) through g attack edges: a confused
honest member vouches for a farm identity, which vouches back. Victims are
random members, or targeted: the viewer's closest contacts (top g by the
viewer's walk score). For several viewers per graph, every metric ranks or
accepts members, and we measure

* AUC: probability that a random honest member scores above a random farm one;
* farm mass: the farm's share of the walk's visits (the trust mass it holds);
* farm members accepted per attack edge when the threshold accepts 90 % of
  honest members (yes/no metrics: farm members accepted / g, with the share of
  honest members accepted);
* the bound of research note §1.2, farm mass <= F (1 - restart) / restart,
  checked in every run.

The `flag` part: one hostile flag, from the most trusted member the attacker
could recruit (who does not already vouch for the target), on members with
>= 3 vouches from the viewer's top decile (largest relative drop; target
<= 25 %); the viewer's own wall (target: score
<= 1 % of before); and a curse attack, where every farm identity flags honest
members, lowering honest AUC (target <= 0.01).

Run: `python -m simulations.sybil [--seeds 3] [--viewers 5] [--quick] [--json]`.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np
import numpy.typing as npt

from node.trust import (
    FlowParameters,
    RandomWalk,
    TrustGraph,
    WalkParameters,
    accepted_members,
    introducer_validity,
)
from node.trust.flow import ADVOGATO_CAPACITIES
from protocol.identity import IdentityId
from simulations.graphs import identities_for
from simulations.members import Members, with_members

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int64]
Weights = dict[tuple[int, int], float]

HONEST_SIZE = 1000
FARM_SIZE = 1000
ATTACK_EDGES = 10
METRICS = ("walk", "walk visits", "per-vouch", "flow", "flow 800", "introducers")
"""`walk` is the default score; `walk visits` ranks by expected visits; `per-vouch`
(a comparator, SybilRank-style) divides visits by the weight of vouches received;
`flow` is acceptance with the derived schedule, `flow 800` with Advogato's
800/200/200/50/12/4/2/1; `introducers` is GnuPG-style validity."""


@dataclass(frozen=True)
class Cell:
    """One (graph, farm shape, victims, metric) result, over viewers and seeds."""

    graph: str
    farm: str
    victims: str
    metric: str
    auc_mean: float
    auc_worst: float
    farm_mass_pct: float
    per_edge_mean: float
    per_edge_worst: float
    honest_accepted_pct: float
    bound_holds: bool


def honest_region(kind: str, rng: np.random.Generator) -> nx.Graph:
    """An undirected honest community of `HONEST_SIZE` members."""
    seed = int(rng.integers(1 << 31))
    if kind == "BA":
        return nx.barabasi_albert_graph(HONEST_SIZE, 4, seed=seed)
    if kind == "HK":
        return nx.powerlaw_cluster_graph(HONEST_SIZE, 4, 0.5, seed=seed)
    if kind == "SBM":
        graph = nx.stochastic_block_model([100] * 10, _block_probabilities(), seed=seed)
        giant = max(nx.connected_components(graph), key=len)
        return nx.convert_node_labels_to_integers(graph.subgraph(giant).copy())
    if kind == "WS":
        return nx.connected_watts_strogatz_graph(HONEST_SIZE, 8, 0.1, seed=seed)
    raise ValueError(f"unknown honest graph {kind!r}")


def _block_probabilities() -> list[list[float]]:
    return [[0.08 if i == j else 0.0015 for j in range(10)] for i in range(10)]


def _vouches(graph: nx.Graph, rng: np.random.Generator, offset: int = 0) -> Weights:
    """Mutual with probability 0.8, otherwise one way; values 30..100."""
    weights: Weights = {}
    for a, b in graph.edges():
        u, v = (a, b) if rng.random() < 0.5 else (b, a)
        weights[(u + offset, v + offset)] = int(rng.integers(30, 101)) / 100.0
        if rng.random() < 0.8:
            weights[(v + offset, u + offset)] = int(rng.integers(30, 101)) / 100.0
    return weights


def farm_region(shape: str, offset: int, rng: np.random.Generator) -> Weights:
    """The identity farm's own vouches (all mutual, value 100)."""
    if shape == "dense":
        graph = nx.barabasi_albert_graph(FARM_SIZE, 4, seed=int(rng.integers(1 << 31)))
        edges = list(graph.edges())
    else:
        edges = [(i, int(rng.integers(0, i))) for i in range(1, FARM_SIZE)]
    weights: Weights = {}
    for a, b in edges:
        weights[(a + offset, b + offset)] = 1.0
        weights[(b + offset, a + offset)] = 1.0
    return weights


def _build(weights: Weights, size: int, viewer: int) -> RandomWalk:
    ids = identities_for(size)
    graph = TrustGraph.from_weights(
        {(ids[a], ids[b]): w for (a, b), w in weights.items()}, identities=ids
    )
    walk = RandomWalk(graph, ids[viewer], WalkParameters())
    assert walk.node(ids[-1]) == size - 1  # counters in byte order: node i is member i
    return walk


def auc(honest: FloatArray, farm: FloatArray) -> float:
    """P(random honest > random farm), ties counting one half."""
    values = np.concatenate([honest, farm])
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(average, counts)
    honest_ranks = ranks[: len(honest)].sum()
    n_h, n_f = len(honest), len(farm)
    return float((honest_ranks - n_h * (n_h + 1) / 2) / (n_h * n_f))


@dataclass(frozen=True)
class RunFigures:
    """One viewer's figures for one metric."""

    auc: float
    farm_mass: float
    per_edge: float
    honest_accepted: float
    bound_holds: bool


def evaluate(
    weights: Weights, n_honest: int, viewer: int, attack: list[tuple[int, int]]
) -> dict[str, RunFigures]:
    """All metrics from one viewer on a graph with attack edges already in `weights`."""
    walk = _build(weights, n_honest + FARM_SIZE, viewer)
    return evaluate_walk(walk, np.arange(n_honest + FARM_SIZE), n_honest, viewer, attack)


def member_order(walk: RandomWalk, identities: Sequence[IdentityId]) -> IndexArray:
    """Member i's node in `walk` (-1: not in it, as a farm no vouch of the viewer reaches)."""
    return np.array([_node_or_missing(walk, i) for i in identities], dtype=np.int64)


def _node_or_missing(walk: RandomWalk, identity: IdentityId) -> int:
    node = walk.node(identity)
    return -1 if node is None else node


def _in_member_order(vector: FloatArray, order: IndexArray) -> FloatArray:
    out = np.zeros(len(order))
    present = order >= 0
    out[present] = vector[order[present]]
    return out


def evaluate_walk(
    walk: RandomWalk, order: IndexArray, n_honest: int, viewer: int,
    attack: list[tuple[int, int]],
) -> dict[str, RunFigures]:  # fmt: skip
    """All metrics from one viewer's `walk` (member i is node `order[i]` of it)."""
    size = n_honest + FARM_SIZE
    honest = np.zeros(size, dtype=bool)
    honest[:n_honest] = True
    honest[viewer] = False
    farm = np.zeros(size, dtype=bool)
    farm[n_honest:] = True
    visits = _in_member_order(walk.visits(), order)
    alpha = walk.parameters.restart
    mass = alpha * visits
    farm_mass = float(mass[farm].sum())
    crossing = sum(
        float(mass[u]) * _transition(walk, int(order[u]), int(order[v])) / (1 - alpha)
        for u, v in attack
        if order[u] >= 0 and order[v] >= 0
    )
    bound = farm_mass <= crossing * (1 - alpha) / alpha + 1e-12
    total_mass = float(mass.sum() - mass[viewer])
    share = farm_mass / total_mass if total_mass > 0 else 0.0
    results: dict[str, RunFigures] = {}
    received = _in_member_order(np.asarray(walk.weight_matrix().sum(axis=0)).ravel(), order)
    per_vouch = visits / np.maximum(received, 1e-12)
    scores = _in_member_order(walk.scores_all(), order)
    graded = (("walk", scores), ("walk visits", visits), ("per-vouch", per_vouch))
    for name, vector in graded:
        threshold = float(np.quantile(vector[honest], 0.10))
        accepted_farm = int(np.count_nonzero(vector[farm] >= threshold)) if threshold > 0 else 0
        results[name] = RunFigures(
            auc(vector[honest], vector[farm]), share, accepted_farm / ATTACK_EDGES, 0.9, bound
        )
    member_of = {int(node): member for member, node in enumerate(order) if node >= 0}
    flow = accepted_members(walk).accepted
    advogato = accepted_members(walk, FlowParameters(capacities=ADVOGATO_CAPACITIES)).accepted
    valid = set(introducer_validity(walk).depth)
    for name, chosen in (("flow", flow), ("flow 800", advogato), ("introducers", valid)):
        yes = np.zeros(size)
        yes[[member_of[n] for n in chosen if n in member_of]] = 1.0
        results[name] = RunFigures(
            auc(yes[honest], yes[farm]), share, float(yes[farm].sum()) / ATTACK_EDGES,
            float(yes[honest].mean()), bound,
        )  # fmt: skip
    return results


def _transition(walk: RandomWalk, u: int, v: int) -> float:
    cols, probs = walk.transition_row(u)
    hits = probs[cols == v]
    return float(hits[0]) if hits.size else 0.0


def attack_edges(
    victims: str, scores: FloatArray | None, n_honest: int, viewer: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """g (victim, farm identity) pairs: random victims or the viewer's closest
    (`scores`: the viewer's walk scores of the honest members, in member order)."""
    if victims == "random":
        pool = [i for i in range(n_honest) if i != viewer]
        chosen = rng.choice(pool, ATTACK_EDGES, replace=False).tolist()
    else:
        assert scores is not None
        order = sorted((i for i in range(n_honest) if i != viewer), key=lambda i: -float(scores[i]))
        chosen = order[:ATTACK_EDGES]
    entries = rng.choice(FARM_SIZE, ATTACK_EDGES, replace=False) + n_honest
    return list(zip(chosen, entries.tolist(), strict=True))


def run_cell(
    graph_kind: str, farm_shape: str, victims: str, *, seeds: int, viewers: int
) -> tuple[list[Cell], dict[str, float]]:
    """Every metric for one (graph, farm, victims) cell; also the flag figures.

    Each viewer's community is made of `Node`s (`simulations.members`): every
    vouch and flag is said through its issuer's node, and the figures come
    from the viewer's node (its trust engine's walk, fed from its own store).
    """
    per_metric: dict[str, list[RunFigures]] = {m: [] for m in METRICS}
    flags: dict[str, list[float]] = {"flag_drop": [], "wall_ratio": [], "curse_auc_drop": []}
    for seed in range(seeds):
        rng = np.random.default_rng([seed, len(graph_kind), len(farm_shape), len(victims)])
        honest_graph = honest_region(graph_kind, rng)
        n_honest = honest_graph.number_of_nodes()
        honest_weights = _vouches(honest_graph, rng)
        farm_weights = farm_region(farm_shape, n_honest, rng)
        degrees = np.array([honest_graph.degree(i) for i in range(n_honest)])
        for viewer in _viewers(degrees, viewers, rng):
            found = with_members(
                functools.partial(
                    _one_viewer, honest_weights, farm_weights, n_honest, viewer, victims,
                    farm_shape == "dense", flags, rng, seed=seed,
                )
            )  # fmt: skip
            for name, figures in found.items():
                per_metric[name].append(figures)
    cells = [
        Cell(
            graph=graph_kind,
            farm=farm_shape,
            victims=victims,
            metric=name,
            auc_mean=float(np.mean([r.auc for r in runs])),
            auc_worst=float(np.min([r.auc for r in runs])),
            farm_mass_pct=100 * float(np.mean([r.farm_mass for r in runs])),
            per_edge_mean=float(np.mean([r.per_edge for r in runs])),
            per_edge_worst=float(np.max([r.per_edge for r in runs])),
            honest_accepted_pct=100 * float(np.mean([r.honest_accepted for r in runs])),
            bound_holds=all(r.bound_holds for r in runs),
        )
        for name, runs in per_metric.items()
    ]
    summary = {key: float(np.max(values)) for key, values in flags.items() if values}
    return cells, summary


async def _one_viewer(
    honest_weights: Weights, farm_weights: Weights, n_honest: int, viewer: int, victims: str,
    flag: bool, flags: dict[str, list[float]], rng: np.random.Generator, *, seed: int,
) -> dict[str, RunFigures]:  # fmt: skip
    """One viewer's community of nodes: the metrics, and the flag figures if `flag`."""
    members = Members(n_honest + FARM_SIZE, seed=seed * 1_009 + viewer)
    await members.say_all(honest_weights.items())
    honest_scores = None
    if victims != "random":
        honest_scores = await _walk_scores(members, viewer)
    attack = attack_edges(victims, honest_scores, n_honest, viewer, rng)
    base = {**honest_weights, **farm_weights}
    await members.say_all(farm_weights.items())
    for victim, entry in attack:
        base[(victim, entry)] = 1.0
        base[(entry, victim)] = 1.0
        await members.say(victim, entry, 1.0)
        await members.say(entry, victim, 1.0)
    node = await members.viewer(viewer)
    identities = members.identities
    found = await node.ask(
        lambda e: evaluate_walk(e.walk(), member_order(e.walk(), identities), n_honest, viewer,
                                attack)
    )  # fmt: skip
    if flag:
        await _flag_figures(members, base, n_honest, viewer, flags, rng)
    return found


async def _walk_scores(members: Members, viewer: int) -> FloatArray:
    """The viewer's node's walk scores of every member, in member order."""
    node = await members.viewer(viewer)
    identities = members.identities
    return await node.ask(
        lambda e: _in_member_order(e.walk().scores_all(), member_order(e.walk(), identities))
    )


async def _walk_score(members: Members, viewer: int, member: int) -> float:
    node = await members.viewer(viewer)
    identity = members.identities[member]
    return await node.ask(lambda e: e.walk().score(identity))


def _viewers(degrees: npt.NDArray[np.int64], count: int, rng: np.random.Generator) -> list[int]:
    """Viewers spread over degree quantiles (never an isolated member)."""
    order = np.argsort(degrees, kind="stable")
    order = order[degrees[order] > 0]
    picks = [int(order[int(q * (len(order) - 1))]) for q in np.linspace(0.1, 0.9, count)]
    return sorted(set(picks)) if count > 1 else [int(rng.choice(order))]


async def _flag_figures(
    members: Members, weights: Weights, n_honest: int, viewer: int, out: dict[str, list[float]],
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """One flag, the viewer's wall and a farm's curse, each said through the nodes."""
    size = n_honest + FARM_SIZE
    before = await _walk_scores(members, viewer)
    ranked = [int(i) for i in np.argsort(-before[:n_honest], kind="stable") if i != viewer]
    top = ranked[: n_honest // 10]
    vouched = [x for x in ranked if sum(1 for t in top if weights.get((t, x), 0.0) > 0.0) >= 3]
    for target in rng.choice(vouched, min(5, len(vouched)), replace=False).tolist():
        prior = float(before[target])
        # The most trusted member the attacker could recruit that does not
        # vouch for the target (a voucher turning flagger first withdraws its
        # vouch: that is a change of mind, not the flag's penalty).
        flagger = next(i for i in ranked if i != target and (i, target) not in weights)
        await members.say(flagger, target, -1.0)
        out["flag_drop"].append(1.0 - await _walk_score(members, viewer, target) / prior)
        await members.withdraw(flagger, target)
        await members.say(viewer, target, -1.0)  # supersedes the viewer's vouch, if any
        out["wall_ratio"].append(await _walk_score(members, viewer, target) / prior)
        await members.withdraw(viewer, target)
        if (viewer, target) in weights:  # the vouch the wall replaced comes back
            await members.say(viewer, target, weights[(viewer, target)])
    honest = np.zeros(size, dtype=bool)
    honest[:n_honest] = True
    honest[viewer] = False
    victims = rng.choice(ranked, 100, replace=False)
    for farm_member in range(n_honest, size):
        for target in rng.choice(victims, 3, replace=False).tolist():
            await members.say(farm_member, int(target), -1.0)
    after = await _walk_scores(members, viewer)
    farm = np.arange(size) >= n_honest
    out["curse_auc_drop"].append(
        auc(before[honest], before[farm]) - auc(after[honest], after[farm])
    )


def run(
    *, graphs: tuple[str, ...], farms: tuple[str, ...], victims: tuple[str, ...],
    seeds: int, viewers: int, progress: Callable[[str], None] | None = None,
) -> tuple[list[Cell], dict[str, float]]:  # fmt: skip
    """The whole grid; returns the cells and the worst flag figures."""
    cells: list[Cell] = []
    flags: dict[str, list[float]] = {}
    for graph_kind in graphs:
        for farm in farms:
            for victim_mode in victims:
                if progress is not None:
                    progress(f"{graph_kind} / {farm} farm / {victim_mode} victims")
                found, summary = run_cell(
                    graph_kind, farm, victim_mode, seeds=seeds, viewers=viewers
                )
                cells.extend(found)
                for key, value in summary.items():
                    flags.setdefault(key, []).append(value)
    return cells, {key: max(values) for key, values in flags.items()}


def _print(cells: list[Cell], flags: dict[str, float]) -> None:
    print(
        "AUC mean / worst viewer, farm mass %, farm members accepted per attack edge "
        "mean / worst (at 90 % honest accepted; yes/no metrics: honest accepted %)"
    )
    print(
        f"{'graph':5} {'farm':6} {'victims':8} {'metric':12} {'AUC':>13} {'mass%':>6} "
        f"{'per edge':>11} {'honest%':>8} bound"
    )
    for c in cells:
        print(
            f"{c.graph:5} {c.farm:6} {c.victims:8} {c.metric:12} "
            f"{c.auc_mean:6.3f}/{c.auc_worst:6.3f} {c.farm_mass_pct:6.2f} "
            f"{c.per_edge_mean:5.1f}/{c.per_edge_worst:5.1f} {c.honest_accepted_pct:8.1f} "
            f"{'ok' if c.bound_holds else 'VIOLATED'}"
        )
    print()
    for key, value in flags.items():
        print(f"worst {key}: {value:.4f}")


def main(argv: list[str] | None = None) -> int:
    """Run the scenario and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--viewers", type=int, default=3)
    parser.add_argument("--graphs", default="BA,HK,SBM,WS")
    parser.add_argument("--farms", default="dense,tree")
    parser.add_argument("--victims", default="random,targeted")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    cells, flags = run(
        graphs=tuple(arguments.graphs.split(",")),
        farms=tuple(arguments.farms.split(",")),
        victims=tuple(arguments.victims.split(",")),
        seeds=arguments.seeds,
        viewers=arguments.viewers,
        progress=None if arguments.json else lambda s: print(f"... {s}", file=sys.stderr),
    )
    if arguments.json:
        print(json.dumps({"cells": [asdict(c) for c in cells], "flags": flags}))
    else:
        _print(cells, flags)
        print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
