"""What the trust engine answers with, and the thresholds of its yes/no answers.

`TrustExplanation` and `ClaimDecision` are the engine's answers in identities
(the walk works in node numbers); `DecisionParameters` sets the thresholds
`accepted()` and `claim()` apply. Kept apart from `node.trust.engine`, which
owns the incremental state, so that each reads on its own.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

from node.trust.consensus import Consensus
from node.trust.explain import Explanation, WhyNot
from node.trust.key_history import KeyHistory
from node.trust.walk import RandomWalk
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityId

__all__ = [
    "ClaimDecision",
    "DecisionParameters",
    "TrustExplanation",
    "corroborated",
    "named_explanation",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionParameters:
    """Thresholds of the yes/no answers, derived per viewer from its support's scores.

    A threshold is median x max(floor, 1 - spread x u), where median is the
    median score of the viewer's support and u its upper spread, (q75 -
    median) / median (q75: the support's upper quartile). It reads: the
    honest bulk reaches `spread` times its upper half-width below the
    median, and never less than `floor` x median.

    Why per viewer: how widely honest scores spread depends on the
    community's shape (a slow-mixing ring scores nearly everyone alike,
    u ~ 0.13; a degree-heterogeneous one spreads them, u ~ 0.33), and an
    identity farm behind a viewer's closest contacts sits just below that
    bulk, so no single fraction of the median suits every shape (issue 22:
    0.5 x median let 6 farm members per attack edge through on a ring and
    rejected up to 10 % of honest members on the spread shapes). Why the upper
    half: farm members score below the median (or they are accepted
    anyway), so the spread is read where they are not; the median itself
    moves by at most the farm's share of the support, which its walk mass
    bounds (`node.trust.support`), not its identity count. Chosen on two
    seeds of `simulations.community_study`'s four shapes and five attacks at
    1 000 members (`simulations/results/community-study-2026-12-02.txt`).

    A claim's subject stands on one of two routes (`Decisions.claim`). On
    the line (the score >= the claim threshold) its standing must not be
    carried by a few seeds: its median rank over the consensus seeds is at
    least `claim_seeds` x its score (the mean). Under a targeted attack an
    identity farm's best members score like the honest bottom 5-10 %, lifted
    by the seeds next to the attack edges, and the median drops them. Below
    the line (a member in a far block of the community, whose seeds' ranks
    are just as skewed as a farm's) it stands if `independent` certifiers in
    the honest bulk (each >= `claim_backers` x median) vouch for its claim:
    a farm's certifiers are its own best-placed identities, which scored at
    most 0.82 x median in the study. Chosen on seeds 0 and 1
    (`simulations/results/community-holdout-summary-2026-12-02b.md`).

    Anchored (2026-12-02c): one strong certifier is enough if it is broadly
    ranked, its seeds' median >= `claim_anchor` x median, the other chains
    ending at any certifier in the gate. Genuine claims missed by the backed
    route mostly had one street-mate in the honest bulk and one weaker
    (0.3-0.85 x median); a farm's entry identities, lifted by the seeds next to
    their attack edges, reached 0.82 x median by score but at most 0.67 x
    median by seeds' median (seeds 0 and 1, with 0.6 the farm got 3.3 claims
    per attack edge through: `community-holdout-summary-2026-12-02c.md`).
    """

    accept: float = 0.45  # accepted(): the floor
    accept_spread: float | None = 2.7  # None: accept x median, the rule before (a sweep's knob)
    claim: float = 0.45  # claim(): the subject's floor
    claim_spread: float | None = 3.25  # None: claim x median
    certifier: float = 0.25  # claim(): each certifier (and chain member) >= certifier x median
    # claim(), on the line: the subject's median rank over the consensus seeds
    # must be >= claim_seeds x its score (0: not checked, the rule before 2026-12-02b).
    claim_seeds: float = 0.5
    # claim(), below the line: a subject scoring >= claim_backed x median is
    # accepted on `independent` disjoint chains to certifiers who each score
    # >= claim_backers x median (None: no such route, the rule before 2026-12-02b).
    claim_backed: float = 0.2
    claim_backers: float | None = 0.9
    # claim(), below the line or failing the seeds' median, anchored: a subject
    # scoring >= claim_backed x median is accepted on `independent` disjoint
    # chains to certifiers in the certifier gate of which one, the anchor, scores
    # >= claim_backers x median and has a seeds' median >= claim_anchor x median
    # (None: no such route, the rule before 2026-12-02c).
    claim_anchor: float | None = 0.8

    def __post_init__(self) -> None:
        widths = [w for w in (self.accept_spread, self.claim_spread) if w is not None]
        backers = [b for b in (self.claim_backers, self.claim_anchor) if b is not None]
        if min(self.accept, self.claim, self.certifier, self.claim_seeds, self.claim_backed,
               *widths, *backers) < 0.0:  # fmt: skip
            raise LocalProtocolError("decision thresholds must be >= 0")

    def threshold(
        self, median: float, spread: float, *, floor: float, width: float | None
    ) -> float:
        """median x max(floor, 1 - width x spread) (class doc); floor x median with no width."""
        if width is None:
            return median * floor
        return median * max(floor, 1.0 - width * spread)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustExplanation:
    """`Explanation` with identities instead of node numbers."""

    subject: IdentityId
    context: str
    score: float
    reach: float
    wall: float
    flag_penalty: float
    flags: tuple[tuple[IdentityId, float, float], ...]  # (flagger, strength, removed)
    first_hops: tuple[tuple[IdentityId, float], ...]  # (direct contact, share of score)
    paths: tuple[tuple[tuple[IdentityId, ...], float], ...]  # (route, share of reach)
    path_coverage: float
    why_not: WhyNot | None
    # The consensus score's parts: (seed, part); the parts sum to `score`.
    # Empty with `score_method="walk"` (then `first_hops` sum to the score).
    seeds: tuple[tuple[IdentityId, float], ...] = ()
    # Succession, devices and recoveries behind the subject and the listed edges
    # (node.trust.key_history): "vouched for her previous key on ...".
    keys: KeyHistory = field(default_factory=KeyHistory)

    def edges(self, viewer: IdentityId) -> list[tuple[IdentityId, IdentityId]]:
        """The (issuer, subject) member pairs this explanation shows: first hops, then routes."""
        found = [(viewer, via) for via, _ in self.first_hops]
        found += [(a, b) for route, _ in self.paths for a, b in itertools.pairwise(route)]
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimDecision:
    """Whether `claim` about `subject` is certified by enough independent trust."""

    subject: IdentityId
    claim: str
    accepted: bool
    required: int
    independent: int
    certifiers: tuple[IdentityId, ...]  # every current certifier, counted or not
    paths: tuple[tuple[IdentityId, ...], ...]  # the disjoint chains that counted
    own_certification: bool = False  # the viewer certified it: accepted on its own word


def corroborated(
    named: TrustExplanation, found: Consensus, walk: RandomWalk, node: int
) -> TrustExplanation:
    """The walk's explanation, re-scaled to the consensus score, with its seeds' parts.

    First hops keep the viewer's own walk's proportions (what share of the
    viewer's reach of x came through each contact), scaled so that they
    sum to the displayed score; the seeds' parts are the score's exact sum.
    """
    score = float(found.scores[node])
    base = float(found.base[node])
    factor = score / base if base > 0.0 else 0.0
    parts = found.ranks[:, node] * (factor / len(found.seeds))
    seeds = sorted(
        ((walk.identities[s], float(p)) for s, p in zip(found.seeds, parts, strict=True)),
        key=lambda item: (-item[1], item[0]),
    )
    scale = score / named.score if named.score > 0.0 else 0.0
    return dataclasses.replace(
        named,
        score=score,
        first_hops=tuple((via, share * scale) for via, share in named.first_hops),
        seeds=tuple(seeds),
    )


def named_explanation(
    explanation: Explanation, walk: RandomWalk, subject: IdentityId, context: str
) -> TrustExplanation:
    ids = walk.identities
    return TrustExplanation(
        subject=subject,
        context=context,
        score=explanation.score,
        reach=explanation.reach,
        wall=explanation.wall,
        flag_penalty=explanation.flag_penalty,
        flags=tuple((ids[f.flagger], f.strength, f.removed) for f in explanation.flags),
        first_hops=tuple((ids[h.via], h.share) for h in explanation.first_hops),
        paths=tuple((tuple(ids[n] for n in p.nodes), p.share) for p in explanation.paths),
        path_coverage=explanation.path_coverage,
        why_not=explanation.why_not,
    )
