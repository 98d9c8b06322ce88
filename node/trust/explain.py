"""Why a score is what it is: first-hop split, strongest paths, walls, flags, why not.

Every number here is exact, read off the same reverse solve as the score
(`RandomWalk.reach`):

* **First-hop split.** For x != s, reach(x) = sum over the viewer's vouches
  v of M[s, v] * reach_v(x), where reach_v(x) = Y_x[v] / Y_x[x]. Scaled by the
  wall and flag factors, the parts sum to the displayed score ("62 % via
  Alice").
* **Strongest paths.** A walk reaches x first along one route; the
  probability of a route is the product of its transition probabilities, and
  routes are disjoint events, so each route's *share* of reach(x) is exact. The
  top-k simple routes come from a best-first search whose priority,
  probability-so-far x reach_u(x), never underestimates a completion (one
  route's probability is at most the probability of reaching x at all), so
  routes come out strongest first (A*).
* **Walls and flags**: the viewer's own distrust and the flag penalty parts.
* **Why not**: when nothing reaches x, say whether x is unknown, has no path
  from the viewer, or is reachable only through members the viewer walls off.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from node.trust.walk import RandomWalk

__all__ = ["Explanation", "FirstHop", "Flag", "PathShare", "WhyNot", "explain_node"]

_MAX_EXPANSIONS = 20_000


class WhyNot(enum.Enum):
    """Why a score is zero (the value is the stable API code)."""

    UNKNOWN = "unknown"  # nobody vouched for or mentioned this identity
    NO_PATH = "no_path"  # no chain of positive vouches leads from the viewer to it
    WALLED = "walled"  # the viewer's own distrust blocks it or every path to it
    FLAGGED = "flagged"  # reached, but the flags' penalty removed everything


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstHop:
    """The part of the score carried by walks whose first step is to `via`."""

    via: int
    share: float  # of the displayed score, absolute (the parts sum to the score)


@dataclass(frozen=True, slots=True, kw_only=True)
class PathShare:
    """One route of vouches from the viewer to the target and its exact share."""

    nodes: tuple[int, ...]
    probability: float  # probability that a walk takes exactly this route
    share: float  # probability / reach(target)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flag:
    """A flag on the target and the share of the score it removed."""

    flagger: int
    strength: float
    removed: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Everything behind one score; nodes are numbers of the walk's graph."""

    target: int
    score: float
    reach: float
    wall: float
    flags: tuple[Flag, ...]
    flag_penalty: float
    first_hops: tuple[FirstHop, ...]
    paths: tuple[PathShare, ...]
    path_coverage: float  # the share of reach(target) the listed paths explain
    why_not: WhyNot | None


def explain_node(walk: RandomWalk, target: int, *, top_paths: int = 5) -> Explanation:
    """Explain the score of `target` as the viewer sees it."""
    viewer = walk.viewer
    if target == viewer:
        return Explanation(
            target=target, score=1.0, reach=1.0, wall=0.0, flags=(), flag_penalty=0.0,
            first_hops=(), paths=(PathShare(nodes=(viewer,), probability=1.0, share=1.0),),
            path_coverage=1.0, why_not=None,
        )  # fmt: skip
    reach = walk.reach(target)
    reached = walk.reach_probability(target)
    penalty = walk.penalty(target, reached=reached)
    wall = walk.wall(target)
    factor = (1.0 - wall) * (1.0 - penalty.total)
    cols, probs = walk.transition_row(viewer)
    hops = [
        FirstHop(via=int(v), share=float(p) * reach.from_node(int(v)) * factor)
        for v, p in zip(cols.tolist(), probs.tolist(), strict=True)
    ]
    hops = sorted((h for h in hops if h.share > 0.0), key=lambda h: (-h.share, h.via))
    paths = _strongest_paths(walk, target, reached, top_paths) if reached > 0.0 else []
    score = walk.score_node(target)
    return Explanation(
        target=target,
        score=score,
        reach=reached,
        wall=wall,
        flags=tuple(Flag(flagger=f, strength=s, removed=r) for f, s, r in penalty.by_flagger),
        flag_penalty=penalty.total,
        first_hops=tuple(hops),
        paths=tuple(paths),
        path_coverage=sum(p.share for p in paths),
        why_not=_why_not(walk, target, reached, score),
    )


def _strongest_paths(walk: RandomWalk, target: int, reached: float, k: int) -> list[PathShare]:
    """The `k` strongest simple routes to `target`, strongest first (A*, module doc).

    Children are generated lazily: expanding a route sorts its extensions by
    bound and queues only the best one; popping a route queues its next
    sibling. A route's siblings are never needed before it (their bounds are
    no larger), so routes come out in the same order as if every extension
    were queued at once, but a member with thousands of vouches costs one
    sort, not thousands of heap entries (most of an explain's path search at
    a million arcs, where routes run through hubs).
    """
    visits_to_target = walk.reach(target).visits_to_target
    # reach_u(target) for every u: an upper bound on any single route from u.
    bound_from = visits_to_target / max(float(visits_to_target[target]), 1e-300)
    viewer = walk.viewer
    # (-bound, probability, route, index among its siblings, the siblings)
    heap: list[tuple[float, float, tuple[int, ...], int, _Siblings | None]] = [
        (-reached, 1.0, (viewer,), 0, None)
    ]
    found: list[PathShare] = []
    expansions = 0
    while heap and len(found) < k and expansions < _MAX_EXPANSIONS:
        _, probability, nodes, index, siblings = heapq.heappop(heap)
        if siblings is not None and index + 1 < siblings.cols.size:
            heapq.heappush(heap, siblings.entry(index + 1))
        last = nodes[-1]
        if last == target:
            found.append(
                PathShare(nodes=nodes, probability=probability, share=probability / reached)
            )
            continue
        expansions += 1
        cols, probs = walk.transition_row(last)
        extended = probability * probs
        bounds = extended * np.minimum(bound_from[cols], 1.0)
        keep = bounds > 0.0
        for node in nodes:
            keep &= cols != node
        if not keep.any():
            continue
        cols, extended, bounds = cols[keep], extended[keep], bounds[keep]
        # Strongest first; ties as a heap of (-bound, probability, route) would pop them.
        order = np.lexsort((cols, extended, -bounds))
        children = _Siblings(
            prefix=nodes, cols=cols[order], probabilities=extended[order], bounds=bounds[order]
        )
        heapq.heappush(heap, children.entry(0))
    return found


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class _Siblings:
    """The extensions of one route, strongest bound first (`_strongest_paths`)."""

    prefix: tuple[int, ...]
    cols: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float64]
    bounds: npt.NDArray[np.float64]

    def entry(self, index: int) -> tuple[float, float, tuple[int, ...], int, _Siblings | None]:
        """The heap entry of extension `index`."""
        return (
            -float(self.bounds[index]),
            float(self.probabilities[index]),
            (*self.prefix, int(self.cols[index])),
            index,
            self,
        )


def _why_not(walk: RandomWalk, target: int, reached: float, score: float) -> WhyNot | None:
    if score > 0.0:
        return None
    if reached > 0.0:
        return WhyNot.WALLED if walk.wall(target) >= 1.0 else WhyNot.FLAGGED
    return WhyNot.WALLED if _has_path(walk, target, through_walls=True) else WhyNot.NO_PATH


def _has_path(walk: RandomWalk, target: int, *, through_walls: bool) -> bool:
    seen = {walk.viewer}
    queue = deque([walk.viewer])
    while queue:
        node = queue.popleft()
        if node != walk.viewer and not through_walls and walk.wall(node) >= 1.0:
            continue
        cols, _ = walk.out_edges(node)
        for v in cols.tolist():
            if v == target:
                return True
            if v not in seen:
                seen.add(v)
                queue.append(v)
    return False
