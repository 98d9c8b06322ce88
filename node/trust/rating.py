"""`rating(thing)`: what the people I trust say about a thing, within a few hops.

A bounded-hop, trust-weighted average (GrapeRank / MoleTrust family): a
rating counts when its issuer is within `max_hops` vouches of the viewer
(or is the viewer), weighted by the issuer's standing: the expected number of
visits of the viewer's walk, capped at 1, times the viewer's own wall factor
(the viewer's own rating has weight 1). Cheap, and intuitive to explain, but
beyond two or three hops it barely separates honest raters from an identity
farm, hence the horizon.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse.csgraph as csgraph

from node.trust.walk import RandomWalk
from protocol.attestation import Attestation
from protocol.statement import Rate, Subject

__all__ = ["RatingSummary", "rated_contexts", "rating_of", "weighted_rating"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingSummary:
    """The weighted average of the counted ratings (value/100, in [-1, 1])."""

    value: float | None  # None when no rating counted
    total_weight: float
    counted: tuple[tuple[int, float, float], ...]  # (rater, value, weight), heaviest first
    ignored: int  # ratings from raters beyond the horizon or without standing


def weighted_rating(
    walk: RandomWalk, ratings: Iterable[tuple[int, float]], *, max_hops: int = 3
) -> RatingSummary:
    """Aggregate `ratings` given as (rater node, value in [-1, 1])."""
    pairs = list(ratings)
    if not pairs:
        return RatingSummary(value=None, total_weight=0.0, counted=(), ignored=0)
    hops = csgraph.shortest_path(
        walk.weight_matrix(), unweighted=True, indices=walk.viewer, directed=True
    )
    visits, walls = walk.visits(), walk.walls()
    counted: list[tuple[int, float, float]] = []
    for rater, value in pairs:
        if rater == walk.viewer:
            weight = 1.0
        elif np.isfinite(hops[rater]) and hops[rater] <= max_hops:
            weight = min(1.0, float(visits[rater])) * (1.0 - float(walls[rater]))
        else:
            weight = 0.0
        if weight > 0.0:
            counted.append((rater, value, weight))
    total = sum(w for _, _, w in counted)
    counted.sort(key=lambda c: (-c[2], c[0]))
    return RatingSummary(
        value=sum(v * w for _, v, w in counted) / total if total > 0.0 else None,
        total_weight=total,
        counted=tuple(counted),
        ignored=len(pairs) - len(counted),
    )


def rating_of(
    walk: RandomWalk,
    heads: Iterable[Attestation],
    subject: Subject,
    context: str,
    *,
    max_hops: int = 3,
) -> RatingSummary:
    """`weighted_rating` over the current `heads` rating `subject` in `context`;
    raters the viewer's walk does not even contain count as ignored."""
    pairs: list[tuple[int, float]] = []
    unreached = 0
    for head in heads:
        statement = head.statement
        if (
            isinstance(statement, Rate)
            and statement.subject == subject
            and statement.context == context
        ):
            node = walk.node(head.issuer)
            if node is None:
                unreached += 1
            else:
                pairs.append((node, statement.value / 100.0))
    summary = weighted_rating(walk, pairs, max_hops=max_hops)
    return dataclasses.replace(summary, ignored=summary.ignored + unreached)


def rated_contexts(heads: Iterable[Attestation], subject: Subject) -> list[str]:
    """The contexts `subject` has current ratings in among `heads`, sorted."""
    return sorted(
        {s.context for h in heads if isinstance(s := h.statement, Rate) and s.subject == subject}
    )
