"""Personalised transitive trust, computed locally and explained (DESIGN §6).

Pure: no trio, no store, no clock. Feed a `TrustEngine` verified
attestations, or build a `TrustGraph` from an edge list and run a metric on
it directly:

* `RandomWalk`: the default, graded score (walk with restart from the viewer,
  walls for the viewer's distrust, bounded flags), with `explain_node`;
* `accepted_members` / `independent_paths`: yes/no by capacity flow;
* `introducer_validity`: OpenPGP-style rules (1 full or 3 marginal);
* `weighted_rating`: a bounded-hop trust-weighted average.
"""

from node.trust.engine import ClaimDecision, TrustEngine, TrustExplanation
from node.trust.explain import Explanation, FirstHop, Flag, PathShare, WhyNot, explain_node
from node.trust.flow import (
    FlowAcceptance,
    FlowParameters,
    IndependentPaths,
    accepted_members,
    independent_paths,
)
from node.trust.graph import (
    GENERAL_FALLBACK,
    Certification,
    Edge,
    Evidence,
    Rating,
    TrustGraph,
    context_weights,
    current_attestations,
    evidence_from_attestations,
)
from node.trust.introducer import (
    IntroducerLevel,
    IntroducerParameters,
    Validity,
    introducer_validity,
)
from node.trust.rating import RatingSummary, weighted_rating
from node.trust.walk import FlagPenalty, RandomWalk, Reach, UpdateReport, WalkParameters

__all__ = [
    "GENERAL_FALLBACK",
    "Certification",
    "ClaimDecision",
    "Edge",
    "Evidence",
    "Explanation",
    "FirstHop",
    "Flag",
    "FlagPenalty",
    "FlowAcceptance",
    "FlowParameters",
    "IndependentPaths",
    "IntroducerLevel",
    "IntroducerParameters",
    "PathShare",
    "RandomWalk",
    "Rating",
    "RatingSummary",
    "Reach",
    "TrustEngine",
    "TrustExplanation",
    "TrustGraph",
    "UpdateReport",
    "Validity",
    "WalkParameters",
    "WhyNot",
    "accepted_members",
    "context_weights",
    "current_attestations",
    "evidence_from_attestations",
    "explain_node",
    "independent_paths",
    "introducer_validity",
    "weighted_rating",
]
