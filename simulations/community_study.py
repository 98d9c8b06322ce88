"""Study `community`: are trust's yes/no answers right at the size of a neighbourhood? (issue 22)

Through the public `TrustEngine` API only (signed attestations in, answers
out), on seeded honest communities of several shapes (`simulations.community`)
joined by an identity farm, from a median-degree viewer:

* **claims**: share of genuine residents whose `resident` claim, certified by
  two street-mates, `claim()` accepts; and farm claims accepted per attack
  edge, the farm certifying its own members (every farm claim certified by
  the two farm identities the attack edges enter: the attacker's best
  certifiers);
* **accepted()**: share of honest members accepted, farm members accepted per
  attack edge;
* **score**: AUC (honest above farm) and farm members at or above the honest
  10th percentile per attack edge.

Attacks (g = 10 attack edges, each a victim's vouch at 80 for a farm
identity and the farm identity's vouch back): `random` victims, `targeted`
(the viewer's 10 closest contacts by the old default score on the honest
graph), `adaptive` (the 10 best-ranked by the new default score: the
attack aimed at the consensus itself), `hubs` (the 10 best-connected
members), and `insider` (the viewer's closest contact vouches for one
farm identity and certifies every farm member's claim; g = 1).

Run: `python -m simulations.community_study [--sizes 100,1000] [--seeds 2]
[--shapes ...] [--attacks ...] [--engine new|median|old] [--json]`
(`median`: the consensus score with the 2026-12-01 thresholds, 0.5 / 0.45 x
the support's median; `spread`: thresholds from each viewer's score spread,
the claim rule of 2026-12-02; `backed`: the claim rule of 2026-12-02b,
seeds' median on the line, backed route below it; `new`: the defaults, the
claim rule of 2026-12-02c, which adds the anchored route).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from node.trust import TrustEngine
from node.trust.engine import DecisionParameters
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityId, IdentityKey
from protocol.statement import Certify, Statement, Trust
from simulations.community import SHAPES, Community, certifications, community, farm

__all__ = [
    "ATTACKS", "ENGINES", "RULES", "Figures", "Scenario", "build", "measure", "measure_rules",
    "run",
]  # fmt: skip

FloatArray = npt.NDArray[np.float64]
ATTACKS = ("random", "targeted", "adaptive", "hubs", "insider")
ATTACK_EDGES = 10
CLAIM = "resident"
NOW = 1_800_000_000_000
EngineFactory = Callable[[IdentityId, list[Attestation]], TrustEngine]

_KEYS: list[IdentityKey] = []


def keys(count: int) -> list[IdentityKey]:
    """Member i's key, from a fixed seed (cached: key derivation is the slow part)."""
    while len(_KEYS) < count:
        _KEYS.append(IdentityKey.from_seed(len(_KEYS).to_bytes(32, "big")))
    return _KEYS[:count]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One community with a farm attached, as attestations, and who is who."""

    shape: str
    attack: str
    honest: int
    farm: int
    viewer: int
    attack_edges: int
    attestations: list[Attestation]
    ids: list[IdentityId]


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """What one engine answered in one scenario."""

    shape: str
    size: int
    attack: str
    claims_pct: float  # genuine residents' claims accepted (two street-mates)
    farm_claims_per_edge: float
    honest_accepted_pct: float
    farm_accepted_per_edge: float
    auc: float
    farm_above_p10_per_edge: float
    # The same, over the sampled claims certified by two members or more (the
    # issue's "certified by two street-mates": a member with one graph neighbour
    # has one certifier and cannot pass independent=2; -1: not measured).
    claims_two_pct: float = -1.0
    single_certified_pct: float = -1.0  # sampled genuine claims with < 2 certifiers


def _sign(key: IdentityKey, statement: Statement) -> Attestation:
    body = AttestationBody(
        issuer=key.identity, issued_at_ms=NOW - 1000, expires_at_ms=None, statement=statement
    )
    return sign_attestation(body, key)


def _viewer(honest: Community) -> int:
    degrees = np.array([len(n) for n in honest.neighbours])
    order = np.argsort(degrees, kind="stable")
    return int(order[len(order) // 2])


def _closest(honest: Community, viewer: int, count: int, factory: EngineFactory) -> list[int]:
    """The viewer's `count` closest contacts: the old default score's top, honest graph only."""
    ks = keys(honest.size)
    atts = [_sign(ks[u], Trust(subject=ks[v].identity, value=w)) for u, v, w in honest.vouches]
    engine = factory(ks[viewer].identity, atts)
    index = {k.identity: i for i, k in enumerate(ks)}
    return [index[identity] for identity, _ in engine.ranking(limit=count)]


def build(
    shape: str, size: int, attack: str, seed: int, *, farm_shape: str = "cliques",
    farm_size: int = 300, pattern: str = "street-mates",
) -> Scenario:  # fmt: skip
    """The scenario's attestations (honest vouches and claims, farm, attack)."""
    honest = community(shape, size, seed)
    viewer = _viewer(honest)
    fake = farm(farm_shape, size, farm_size, seed)
    total = size + farm_size
    ks = keys(total)
    rng = np.random.default_rng([seed, ATTACKS.index(attack), size])
    vouches = list(honest.vouches) + list(fake.vouches)
    certs = certifications(pattern, honest, seed)
    if attack == "insider":
        insider = _closest(honest, viewer, 1, _legacy_factory)[0]
        entries = [size + int(rng.integers(farm_size))]
        vouches += [(insider, entries[0], 80), (entries[0], insider, 100)]
        certs += [(insider, size + f) for f in range(farm_size)]
        edges = 1
    else:
        if attack == "random":
            pool = [i for i in range(size) if i != viewer]
            victims = [int(v) for v in rng.choice(pool, ATTACK_EDGES, replace=False)]
        elif attack == "targeted":
            victims = _closest(honest, viewer, ATTACK_EDGES, _legacy_factory)
        elif attack == "adaptive":
            victims = _closest(honest, viewer, ATTACK_EDGES, _default_factory)
        elif attack == "hubs":
            degree = [len(n) if i != viewer else -1 for i, n in enumerate(honest.neighbours)]
            victims = [int(i) for i in np.argsort(degree, kind="stable")[::-1][:ATTACK_EDGES]]
        else:
            raise ValueError(f"unknown attack {attack!r}")
        entries = [size + int(f) for f in rng.choice(farm_size, ATTACK_EDGES, replace=False)]
        for victim, entry in zip(victims, entries, strict=True):
            vouches += [(victim, entry, 80), (entry, victim, 100)]
        edges = ATTACK_EDGES
        # The farm certifies its own: the two best-placed farm identities certify all.
        a, b = entries[0], entries[1]
        for f in range(size, total):
            certs += [(c, f) for c in ((a, b) if f not in (a, b) else (a if f == b else b,
                      entries[2]))]  # fmt: skip
    atts = [_sign(ks[u], Trust(subject=ks[v].identity, value=w)) for u, v, w in vouches]
    atts += [_sign(ks[c], Certify(subject=ks[x].identity, claim=CLAIM)) for c, x in certs]
    return Scenario(
        shape=shape, attack=attack, honest=size, farm=farm_size, viewer=viewer,
        attack_edges=edges, attestations=atts, ids=[k.identity for k in ks],
    )  # fmt: skip


def _legacy_factory(viewer: IdentityId, atts: list[Attestation]) -> TrustEngine:
    """The rules before issue 22: the walk's score, flow acceptance and certifiers."""
    return TrustEngine(viewer, now_ms=NOW, attestations=atts, score_method="walk", decisions="flow")


def _default_factory(viewer: IdentityId, atts: list[Attestation]) -> TrustEngine:
    return TrustEngine(viewer, now_ms=NOW, attestations=atts)


MEDIAN_RULE = DecisionParameters(accept=0.5, accept_spread=None, claim=0.45, claim_spread=None)
"""The yes/no rule of 2026-12-01: fixed fractions of the support's median."""


def _median_factory(viewer: IdentityId, atts: list[Attestation]) -> TrustEngine:
    """The consensus score with the 2026-12-01 thresholds (0.5 / 0.45 x median)."""
    return TrustEngine(viewer, now_ms=NOW, attestations=atts, decision_parameters=MEDIAN_RULE)


SPREAD_RULE = DecisionParameters(claim_seeds=0.0, claim_backers=None, claim_anchor=None)
"""The yes/no rule of 2026-12-02 (`community-holdout-summary-2026-12-02.md`): the
claim subject on its score's line alone, no seeds' median, no backed route."""


def _spread_factory(viewer: IdentityId, atts: list[Attestation]) -> TrustEngine:
    """The consensus score with the 2026-12-02 claim rule (`SPREAD_RULE`)."""
    return TrustEngine(viewer, now_ms=NOW, attestations=atts, decision_parameters=SPREAD_RULE)


BACKED_RULE = DecisionParameters(claim_anchor=None)
"""The claim rule of 2026-12-02b (`community-holdout-summary-2026-12-02b.md`): the
seeds' median on the line and the backed route, no anchored route."""


def _backed_factory(viewer: IdentityId, atts: list[Attestation]) -> TrustEngine:
    """The consensus score with the 2026-12-02b claim rule (`BACKED_RULE`)."""
    return TrustEngine(viewer, now_ms=NOW, attestations=atts, decision_parameters=BACKED_RULE)


RULES: dict[str, DecisionParameters] = {
    "median": MEDIAN_RULE, "spread": SPREAD_RULE, "backed": BACKED_RULE,
    "new": DecisionParameters(),
}  # fmt: skip
"""The default engine's rules by name, for `measure_rules` (one solve, every rule)."""

ENGINES: dict[str, EngineFactory] = {
    "old": _legacy_factory, "median": _median_factory, "spread": _spread_factory,
    "backed": _backed_factory, "new": _default_factory,
}  # fmt: skip


def auc(honest: FloatArray, fake: FloatArray) -> float:
    """P(random honest member scores above a random farm one), ties counting half."""
    values = np.concatenate([honest, fake])
    order = values.argsort(kind="stable")
    ranks = np.empty(len(values))
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts - 1) / 2.0 + 1, counts)
    n_h, n_f = len(honest), len(fake)
    return float((ranks[:n_h].sum() - n_h * (n_h + 1) / 2) / (n_h * n_f))


def scores_of(engine: TrustEngine, ids: Sequence[IdentityId]) -> FloatArray:
    """Every member's score in one solve (`TrustEngine.scores`)."""
    table = engine.scores()
    return np.array([table.get(i, 0.0) for i in ids])


def measure(scenario: Scenario, factory: EngineFactory, *, claim_sample: int = 0) -> Figures:
    """Ask the engine everything the study reports; `claim_sample` > 0 limits claim checks."""
    engine = factory(scenario.ids[scenario.viewer], scenario.attestations)
    return _figures(scenario, engine, claim_sample)


def measure_rules(
    scenario: Scenario, rules: Mapping[str, DecisionParameters], *, claim_sample: int = 0
) -> dict[str, Figures]:
    """`measure` for several default-engine rules that differ only in their
    `DecisionParameters`, asked of one engine: the score is solved once and the
    rules' answers read off it (the engine's standing caches are keyed by the
    thresholds, so switching `decision_parameters` between rules is exact)."""
    engine = _default_factory(scenario.ids[scenario.viewer], scenario.attestations)
    out: dict[str, Figures] = {}
    for name, rule in rules.items():
        engine.decision_parameters = rule
        out[name] = _figures(scenario, engine, claim_sample)
    return out


def _figures(scenario: Scenario, engine: TrustEngine, claim_sample: int) -> Figures:
    ids = scenario.ids
    honest_ids = [ids[i] for i in range(scenario.honest) if i != scenario.viewer]
    farm_ids = ids[scenario.honest :]
    g = scenario.attack_edges
    scores = scores_of(engine, ids)
    honest_mask = np.zeros(len(ids), dtype=bool)
    honest_mask[: scenario.honest] = True
    honest_mask[scenario.viewer] = False
    h, f = scores[honest_mask], scores[scenario.honest :]
    p10 = float(np.quantile(h, 0.10))
    above = int(np.count_nonzero(f >= p10)) if p10 > 0 else int(np.count_nonzero(f > 0))
    accepted = engine.accepted()
    sample = honest_ids
    if claim_sample and len(sample) > claim_sample:
        step = len(sample) / claim_sample
        sample = [sample[int(k * step)] for k in range(claim_sample)]
    answers = [engine.claim(x, CLAIM) for x in sample]
    genuine = sum(a.accepted for a in answers)
    two = [a for a in answers if len(a.certifiers) >= 2]
    fake_claims = sum(engine.claim(x, CLAIM).accepted for x in farm_ids)
    return Figures(
        shape=scenario.shape,
        size=scenario.honest,
        attack=scenario.attack,
        claims_pct=100.0 * genuine / len(sample),
        farm_claims_per_edge=fake_claims / g,
        honest_accepted_pct=100.0 * sum(x in accepted for x in honest_ids) / len(honest_ids),
        farm_accepted_per_edge=sum(x in accepted for x in farm_ids) / g,
        auc=auc(h, f),
        farm_above_p10_per_edge=above / g,
        claims_two_pct=100.0 * sum(a.accepted for a in two) / len(two) if two else 0.0,
        single_certified_pct=100.0 * (len(answers) - len(two)) / len(answers),
    )


def run(
    *, shapes: Sequence[str], sizes: Sequence[int], attacks: Sequence[str], seeds: int,
    factory: EngineFactory, claim_sample: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[Figures]:  # fmt: skip
    """Every (shape, size, attack, seed) cell."""
    out: list[Figures] = []
    for size in sizes:
        for shape in shapes:
            for attack in attacks:
                for seed in range(seeds):
                    if progress is not None:
                        progress(f"{shape} {size} {attack} seed {seed}")
                    scenario = build(shape, size, attack, seed)
                    out.append(measure(scenario, factory, claim_sample=claim_sample))
    return out


def summarise(figures: Sequence[Figures]) -> list[dict[str, object]]:
    """Mean (and worst) over seeds per (size, shape, attack)."""
    groups: dict[tuple[int, str, str], list[Figures]] = {}
    for fig in figures:
        groups.setdefault((fig.size, fig.shape, fig.attack), []).append(fig)
    rows: list[dict[str, object]] = []
    for (size, shape, attack), runs in groups.items():
        row: dict[str, object] = {"size": size, "shape": shape, "attack": attack}
        for name in ("claims_pct", "honest_accepted_pct", "auc"):
            values = [getattr(r, name) for r in runs]
            row[name] = float(np.mean(values))
            row[name + "_worst"] = float(np.min(values))
        for name in ("farm_claims_per_edge", "farm_accepted_per_edge", "farm_above_p10_per_edge"):
            values = [getattr(r, name) for r in runs]
            row[name] = float(np.mean(values))
            row[name + "_worst"] = float(np.max(values))
        rows.append(row)
    return rows


def format_rows(rows: Sequence[dict[str, object]]) -> str:
    """The study's table: one line per (size, shape, attack), mean (worst) over seeds."""
    lines = [
        f"{'size':>5} {'shape':11} {'attack':8} {'claims%':>13} {'farm cl/e':>11} "
        f"{'honest acc%':>13} {'farm acc/e':>11} {'AUC':>13} {'farm>p10/e':>11}"
    ]
    lines += [
        (
            f"{r['size']:>5} {r['shape']!s:11} {r['attack']!s:8} "
            f"{r['claims_pct']:6.1f} ({r['claims_pct_worst']:5.1f}) "
            f"{r['farm_claims_per_edge']:4.1f} ({r['farm_claims_per_edge_worst']:4.1f}) "
            f"{r['honest_accepted_pct']:6.1f} ({r['honest_accepted_pct_worst']:5.1f}) "
            f"{r['farm_accepted_per_edge']:4.1f} ({r['farm_accepted_per_edge_worst']:4.1f}) "
            f"{r['auc']:.3f} ({r['auc_worst']:.3f}) "
            f"{r['farm_above_p10_per_edge']:4.1f} ({r['farm_above_p10_per_edge_worst']:4.1f})"
        )
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the study and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--claim-sample", type=int, default=0)
    parser.add_argument("--engine", choices=sorted(ENGINES), default="new")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    figures = run(
        shapes=arguments.shapes.split(","),
        sizes=[int(s) for s in arguments.sizes.split(",")],
        attacks=arguments.attacks.split(","),
        seeds=arguments.seeds,
        factory=ENGINES[arguments.engine],
        claim_sample=arguments.claim_sample,
        progress=None if arguments.json else lambda s: print(f"... {s}", file=sys.stderr),
    )
    rows = summarise(figures)
    if arguments.json:
        print(json.dumps({"figures": [asdict(f) for f in figures], "rows": rows}))
    else:
        print(format_rows(rows))
        print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
