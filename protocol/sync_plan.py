"""How a reconciler plans and assembles a reply, apart from the items it holds (SPEC §13).

Pure functions of counts and estimates: which form answers a differing range
(`plan_answer`), the density of a scattered difference from a ladder of
counted ranges (`estimate_density`), and the `ReplyBuilder` that merges
skips and folds a reply that outgrows its budget into one trailing
fingerprint. `protocol.sync` owns the items and calls these; nothing here
sees a peer's bytes.

In sketch forms (SPEC §13), a side that sees a fingerprint differ describes
the range as a *ladder* of counted sub-ranges of sizes 1, 4, 16, ...; the peer
estimates the density of the difference from which of them differ (and how
the counts differ), and answers each differing range with the cheapest of: a
prefix list, sketches sized for the estimated difference, or (for a
difference much denser than elsewhere: a cluster) a 16-way counted split. A
sketch that decodes names every difference in its range at about 18 bytes
each, whatever the range's size; one that does not is described again,
twice as large.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol.attestation import ID_PREFIX_BYTES
from protocol.sketch import CELL_BYTES, cells_for
from protocol.sync_message import (
    INFINITY,
    MAX_IDS_PER_RANGE,
    MAX_RANGES,
    MAX_SKETCHES,
    ZERO,
    Bound,
    Item,
    Mode,
    Range,
    SyncMessage,
)

__all__ = [
    "CLUSTER",
    "DIRECT_PUSH",
    "LADDER_BASE",
    "SKETCH_PART",
    "ReplyBuilder",
    "SketchGroup",
    "bound_between",
    "estimate_density",
    "even_cuts",
    "ladder_cuts",
    "plan_answer",
    "sketch_parts",
]

SKETCH_PART = 1000  # expected differences per sketch: a failure costs one part
DIRECT_PUSH = 4096  # records sent at once for a range the peer holds nothing of
CLUSTER = 4.0  # a range this many times denser in differences than the estimate
LADDER_BASE = 4  # counted sub-ranges of 1, 4, 16, ... items, then the rest


def bound_between(previous: Item, following: Item) -> Bound:
    """The shortest bound b with previous < b <= following."""
    if previous[0] != following[0]:
        return (following[0], b"")
    common = 0
    while previous[1][common] == following[1][common]:
        common += 1
    return (following[0], following[1][: common + 1])


@dataclass(slots=True)
class SketchGroup:
    """Consecutive differing ranges answered by one set of sketches."""

    lower: Bound
    start: int
    upper: Bound = ZERO
    stop: int = 0
    expected: float = 0.0

    def add(self, upper: Bound, stop: int, expected: float) -> None:
        """Extend the group up to `upper` (our index `stop`), expecting more differences."""
        self.upper, self.stop = upper, stop
        self.expected += expected


class ReplyBuilder:
    """Accumulates reply ranges, merging skips and folding the rest past a size budget."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._ranges: list[Range] = []
        self._size = 0
        self._answered = 0  # ranges other than skips
        self._sketches = 0
        self._folded_from: Bound | None = None

    @property
    def folded(self) -> bool:
        """Whether the rest of this reply is one fingerprint: nothing more goes in."""
        return self._folded_from is not None

    def skip(self, upper: Bound) -> None:
        """Skip up to `upper`, merged into a skip just before it."""
        if self._folded_from is not None:
            return
        if self._ranges and self._ranges[-1].mode == Mode.SKIP:
            self._ranges[-1] = Range(upper, Mode.SKIP)
        elif not self._fold_if_full(0):
            self._ranges.append(Range(upper, Mode.SKIP))

    def _fold_if_full(self, cost: int) -> bool:
        # Keep room for the trailing fingerprint within MAX_RANGES; the first
        # answer always goes out, so every round makes progress.
        full = self._size + cost > self._budget or len(self._ranges) >= MAX_RANGES - 2
        if full and self._answered:
            self._folded_from = self._ranges[-1].upper
            return True
        return False

    def add(self, item: Range) -> None:
        """Add a range, unless the reply is full: then the rest is folded into one fingerprint."""
        if self._folded_from is not None:
            return
        cost = 48 + len(item.fingerprint) + 34 * len(item.ids) + len(item.prefixes)
        cost += len(item.sketch) + (5 if item.mode in (Mode.COUNTED, Mode.SKETCH) else 0)
        if self._fold_if_full(cost) or (
            item.mode == Mode.SKETCH
            and self._sketches >= MAX_SKETCHES
            and self._fold_if_full(1 << 62)
        ):
            return  # from here on: one fingerprint, split in later rounds
        self._sketches += item.mode == Mode.SKETCH
        self._size += cost
        self._answered += 1
        self._ranges.append(item)

    def finish(self, tail: Callable[[Bound], Range]) -> SyncMessage:
        """The reply; if folded, `tail(lower)` describes everything from `lower` on."""
        if self._folded_from is not None:
            self._ranges.append(tail(self._folded_from))
        elif not self._ranges or self._ranges[-1].upper != INFINITY:
            self.skip(INFINITY)
        return SyncMessage(tuple(self._ranges))


def estimate_density(matched: int, differing: Sequence[int]) -> float:
    """Maximum-likelihood density of differences: matched items, sizes of differing ranges.

    The log-likelihood -p * matched + sum(log(1 - exp(-p s))) is concave in p;
    its derivative falls from +inf to -matched, so bisection on log p finds
    its zero. All differing (matched == 0) means dense: 1.
    """
    if not differing:
        return 0.0
    if matched == 0:
        return 1.0

    def slope(p: float) -> float:
        return -matched + sum(s / math.expm1(p * s) for s in differing if p * s < 700)

    low, high = -30.0, 0.0  # natural logs of p
    if slope(1.0) >= 0:
        return 1.0
    for _ in range(50):
        middle = (low + high) / 2
        if slope(math.exp(middle)) > 0:
            low = middle
        else:
            high = middle
    return math.exp((low + high) / 2)


def sketch_parts(expected: float, ours: int) -> int:
    """Sketches for a range: one per SKETCH_PART expected differences, at most half its items."""
    return min(math.ceil(expected / SKETCH_PART), max(1, ours // 2))


def plan_answer(
    ours: int, theirs: int, *, floor: float, density: float, threshold: int
) -> tuple[str, float]:
    """How to answer a differing range: `push`, `prefix`, `split` or `sketch`.

    We hold `ours` items of the range, the peer `theirs`. The expected
    difference is the gap between the counts, the estimated density times
    the size, or `floor` (after a sketch failed), whichever is largest; the
    answer is the cheapest form for it. With `sketch` comes the expected
    difference, so that neighbours can share tables.
    """
    if theirs == 0 and ours <= DIRECT_PUSH:
        return ("push", 0.0)  # the peer holds nothing here
    if ours <= threshold:
        return ("prefix", 0.0)
    if theirs == 0:
        return ("split", 0.0)
    gap, size = abs(theirs - ours), max(theirs, ours)
    expected = max(gap, density * size, floor, 1.0)
    parts = sketch_parts(expected, ours)
    sketch_cost = parts * (CELL_BYTES * cells_for(expected / parts) + 24)
    prefix_cost = ID_PREFIX_BYTES * ours + 24 * math.ceil(ours / MAX_IDS_PER_RANGE)
    if prefix_cost <= sketch_cost:
        return ("prefix", 0.0)
    if floor == 0 and gap > CLUSTER * density * size and ours > 16 * threshold:
        # Far denser here than elsewhere: a cluster (a node that was away);
        # a split finds its edges in one round trip, as range descent does.
        return ("split", 0.0)
    return ("sketch", expected)


def even_cuts(start: int, stop: int, pieces: int) -> list[int]:
    """Cuts of [start, stop) into `pieces` nearly equal pieces (fewer if it is small)."""
    count = stop - start
    return sorted({start + count * k // pieces for k in range(1, pieces)} - {start, stop})


def ladder_cuts(start: int, stop: int) -> list[int]:
    """Cuts of [start, stop) into pieces of 1, 4, 16, ... items, the last holding the rest.

    The pieces sample the range at every scale, so the peer can estimate the
    density of a scattered difference from which of them differ (SPEC §13).
    """
    cuts, size, position = [], 1, start
    while position + size - start <= (stop - start) // 2:
        position += size
        cuts.append(position)
        size *= LADDER_BASE
    return cuts
