"""Personalised transitive trust, computed locally and explained (DESIGN §6).

Pure: no trio, no store, no clock. Feed a `TrustEngine` verified
attestations, or build a `TrustGraph` from an edge list and run a metric on
it directly:

* `consensus`: the default, graded score (the viewer's walk corroborated by
  the walks of the members it stands behind, its support);
* `RandomWalk`: the walk with restart from the viewer (walls for the
  viewer's distrust, bounded flags), with `explain_node`;
* `score_support`: the members holding all but the faintest share of the
  walk's mass (whose views the consensus asks);
* `accepted_members` / `independent_paths`: yes/no by capacity flow;
* `introducer_validity`: OpenPGP-style rules (1 full or 3 marginal);
* `weighted_rating`: a bounded-hop trust-weighted average.
"""

from node.trust.consensus import Consensus, ConsensusParameters, consensus
from node.trust.distrust import distrust_body
from node.trust.engine import ClaimDecision, DecisionParameters, TrustEngine, TrustExplanation
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
from node.trust.support import Support, score_support
from node.trust.walk import FlagPenalty, RandomWalk, Reach, UpdateReport, WalkParameters

__all__ = [
    "GENERAL_FALLBACK",
    "Certification",
    "ClaimDecision",
    "Consensus",
    "ConsensusParameters",
    "DecisionParameters",
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
    "Support",
    "TrustEngine",
    "TrustExplanation",
    "TrustGraph",
    "UpdateReport",
    "Validity",
    "WalkParameters",
    "WhyNot",
    "accepted_members",
    "consensus",
    "context_weights",
    "current_attestations",
    "distrust_body",
    "evidence_from_attestations",
    "explain_node",
    "independent_paths",
    "introducer_validity",
    "score_support",
    "weighted_rating",
]
