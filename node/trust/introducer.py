"""OpenPGP-style introducer validity: predictable rules a user can audit by hand.

GnuPG's classic model (`completes-needed` 1, `marginals-needed` 3,
`max-cert-depth` 5), with Sequoia's idea that a certification's amount
decides what kind of introducer it makes:

* the viewer is valid and a full introducer;
* a vouch counts only from a valid introducer: as **full** evidence when
  a full introducer vouches at `full_weight` (value >= 90) or more, as
  **marginal** evidence when any introducer vouches at `marginal_weight`
  (value >= 40) or more;
* a member is valid when it has at least `completes_needed` full or
  `marginals_needed` pieces of evidence (a full one also counts as marginal);
  it then becomes a full introducer if some evidence was full, a marginal one
  otherwise;
* validity spreads one level per step from the viewer, up to `max_depth`.
* the viewer's own distrust makes a member invalid, whatever vouches it has.

Everything is a count over explicit vouches, so `Validity.evidence` shows
exactly why a member is valid. It is Sybil-proof as long as no introducer
vouches for an identity farm; it accepts few members in sparse communities.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from node.trust.walk import RandomWalk

__all__ = ["IntroducerLevel", "IntroducerParameters", "Validity", "introducer_validity"]


class IntroducerLevel(enum.IntEnum):
    """How much a valid member's vouches count."""

    MARGINAL = 1
    FULL = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class IntroducerParameters:
    """GnuPG's knobs, with value thresholds for full and marginal vouches."""

    full_weight: float = 0.9
    marginal_weight: float = 0.4
    completes_needed: int = 1
    marginals_needed: int = 3
    max_depth: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    """Valid members with their depth, introducer level and evidence."""

    depth: dict[int, int]
    level: dict[int, IntroducerLevel]
    evidence: dict[int, tuple[tuple[int, IntroducerLevel], ...]]  # member -> (voucher, kind)


def introducer_validity(
    walk: RandomWalk, parameters: IntroducerParameters | None = None
) -> Validity:
    """Compute who is valid from the viewer's point of view (module doc)."""
    parameters = parameters or IntroducerParameters()
    weights = walk.weight_matrix()
    n = weights.shape[0]
    marginal_edges = (weights >= parameters.marginal_weight).astype(np.int64).tocsr()
    full_edges = (weights >= parameters.full_weight).astype(np.int64).tocsr()
    blocked = walk.walls() >= 1.0
    level = np.zeros(n, dtype=np.int64)
    depth = np.full(n, -1, dtype=np.int64)
    level[walk.viewer], depth[walk.viewer] = IntroducerLevel.FULL, 0
    for step in range(1, parameters.max_depth + 1):
        full_count = full_edges.T @ (level == IntroducerLevel.FULL).astype(np.int64)
        marginal_count = marginal_edges.T @ (level > 0).astype(np.int64)
        fresh = (
            (depth < 0)
            & ~blocked
            & (
                (full_count >= parameters.completes_needed)
                | (marginal_count >= parameters.marginals_needed)
            )
        )
        if not bool(fresh.any()):
            break
        level[fresh] = np.where(
            full_count[fresh] > 0, IntroducerLevel.FULL, IntroducerLevel.MARGINAL
        )
        depth[fresh] = step
    valid = np.flatnonzero(depth >= 0)
    return Validity(
        depth={int(v): int(depth[v]) for v in valid},
        level={int(v): IntroducerLevel(int(level[v])) for v in valid},
        evidence={int(v): _evidence(weights, level, depth, int(v), parameters) for v in valid},
    )


def _evidence(
    weights: sp.csr_matrix,
    level: npt.NDArray[np.int64],
    depth: npt.NDArray[np.int64],
    member: int,
    parameters: IntroducerParameters,
) -> tuple[tuple[int, IntroducerLevel], ...]:
    column = weights[:, [member]].tocoo()
    found: list[tuple[int, IntroducerLevel]] = []
    for voucher, weight in zip(column.row.tolist(), column.data.tolist(), strict=True):
        if depth[voucher] < 0 or depth[voucher] >= depth[member]:
            continue
        if level[voucher] == IntroducerLevel.FULL and weight >= parameters.full_weight:
            found.append((voucher, IntroducerLevel.FULL))
        elif weight >= parameters.marginal_weight:
            found.append((voucher, IntroducerLevel.MARGINAL))
    return tuple(sorted(found))
