"""OpenPGP-style introducer validity: predictable rules a user can audit by hand.

GnuPG's classic "pgp" model (`completes-needed` 1, `marginals-needed` 3,
`max-cert-depth`), where *only the viewer decides who is an introducer*:

* the viewer is valid and a full introducer;
* the viewer's own vouches set its ownertrust: a member the viewer vouches
  for at `full_weight` (value >= 90) or more is a full introducer, at
  `marginal_weight` (value >= 40) or more a marginal one;
* a member the viewer vouches for (at `marginal_weight` or more) is valid;
  another is valid when at least `completes_needed` full or
  `marginals_needed` full-or-marginal introducers vouch for it at
  `marginal_weight` or more;
* `delegation_depth` > 1 adds trust signatures (RFC 4880 §5.2.3.13): a valid
  member that a full introducer vouches for at `full_weight` becomes a full
  introducer itself, one level further, up to that depth. The default, 1, is
  classic GnuPG: nobody but the viewer makes introducers, so an identity farm
  gets nothing unless the viewer vouches for a confused member strongly;
* the viewer's own distrust makes a member invalid, whatever vouches it has.

Everything is a count over explicit vouches, so `Validity.evidence` shows
exactly why a member is valid. Sybil-proof unless the viewer marks a bad
introducer; in sparse communities it accepts few members (research note
§4.3), which is the price of rules one can check by hand.
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
    delegation_depth: int = 1
    max_depth: int = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class Validity:
    """Valid members with their depth, introducer level and evidence."""

    depth: dict[int, int]
    level: dict[int, IntroducerLevel]  # valid members that are introducers
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
    level = np.zeros(n, dtype=np.int64)  # introducer level; 0: not an introducer
    depth = np.full(n, -1, dtype=np.int64)
    level[walk.viewer], depth[walk.viewer] = IntroducerLevel.FULL, 0
    own_cols, own_weights = walk.out_edges(walk.viewer)
    ownertrust = np.zeros(n, dtype=np.int64)
    ownertrust[own_cols[own_weights >= parameters.marginal_weight]] = IntroducerLevel.MARGINAL
    ownertrust[own_cols[own_weights >= parameters.full_weight]] = IntroducerLevel.FULL
    for step in range(1, parameters.max_depth + 1):
        full_count = full_edges.T @ (level == IntroducerLevel.FULL).astype(np.int64)
        marginal_count = marginal_edges.T @ (level > 0).astype(np.int64)
        fresh = (
            (depth < 0)
            & ~blocked
            & (
                (full_count >= parameters.completes_needed)
                | (marginal_count >= parameters.marginals_needed)
                | (ownertrust > 0)  # the viewer's own vouch is ultimate evidence
            )
        )
        if not bool(fresh.any()):
            break
        depth[fresh] = step
        delegated = fresh & (full_count > 0) & (1 < step <= parameters.delegation_depth)
        level[fresh] = np.maximum(ownertrust[fresh], np.where(delegated[fresh], 2, 0))
    valid = np.flatnonzero(depth >= 0)
    by_subject = weights.tocsc()
    level[walk.viewer] = IntroducerLevel.FULL
    return Validity(
        depth={int(v): int(depth[v]) for v in valid},
        level={int(v): IntroducerLevel(int(level[v])) for v in valid if level[v] > 0},
        evidence={int(v): _evidence(by_subject, level, depth, int(v), parameters) for v in valid},
    )


def _evidence(
    weights: sp.csc_matrix,
    level: npt.NDArray[np.int64],
    depth: npt.NDArray[np.int64],
    member: int,
    parameters: IntroducerParameters,
) -> tuple[tuple[int, IntroducerLevel], ...]:
    start, end = weights.indptr[member], weights.indptr[member + 1]
    vouchers, amounts = weights.indices[start:end], weights.data[start:end]
    found: list[tuple[int, IntroducerLevel]] = []
    for voucher, weight in zip(vouchers.tolist(), amounts.tolist(), strict=True):
        if level[voucher] == 0 or depth[voucher] < 0 or depth[voucher] >= depth[member]:
            continue
        strong = weight >= parameters.full_weight or depth[voucher] == 0
        if level[voucher] == IntroducerLevel.FULL and strong:
            found.append((voucher, IntroducerLevel.FULL))
        elif weight >= parameters.marginal_weight:
            found.append((voucher, IntroducerLevel.MARGINAL))
    return tuple(sorted(found))
