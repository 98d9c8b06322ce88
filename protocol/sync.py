"""Range-based set reconciliation over `(issued_at_ms, id)`, sans-I/O (SPEC §13, draft).

Two peers find which attestation ids each lacks by exchanging fingerprints of
ranges of their sorted sets, splitting the ranges whose fingerprints differ,
and listing ids once a range is small: the approach of Meyer's range-based set
reconciliation and of the negentropy protocol. Cost grows with the difference,
not with the sets: identical sets settle in one round trip.

A `Reconciler` holds one side's sorted items. The initiator calls `initiate()`;
then each side feeds the other's message to `receive()`, which returns the
reply, or None when it has nothing left to say. Afterwards `need` holds every
id the peer has and we lack, except those the peer sends as records, and
`have` those we must send as records (`push_missing`, `compact`). Every
received message is validated strictly and bounded; anything else raises a
typed `DecodeError`.

`compact` (for a peer whose hello names `sync-compact`) lists small ranges by
8-byte id prefixes and sends 8-byte fingerprints: the leaves and fingerprints
are nearly all of what scattered loss costs, and 64 bits are plenty to tell
sets apart that nobody chose to collide (see SPEC §13).

`sketch` (for a peer whose hello names `sync-sketch`, SPEC §13, sketch forms) adds
counted fingerprints (mode 7) and invertible Bloom lookup tables of id prefixes
(mode 8, `protocol.sketch`) for scattered differences.

The messages and their codec live in `protocol.sync_message` (re-exported here);
which form answers a differing range, and the reply's assembly, in
`protocol.sync_plan`. This module owns the items and walks a message's ranges.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from protocol.attestation import ID_PREFIX_BYTES
from protocol.errors import LocalProtocolError
from protocol.sketch import (
    PureSketchBuilder,
    Sketch,
    SketchBuilder,
    cells_for,
    decode_difference,
    range_salt,
)
from protocol.sync_message import (
    INFINITY,
    MAX_IDS_PER_RANGE,
    MAX_RANGES,
    MAX_SKETCHES,
    MAX_WANTED,
    SHORT_FINGERPRINT_BYTES,
    SYNC_VERSION,
    ZERO,
    Bound,
    Item,
    Mode,
    Range,
    SyncMessage,
    decode_sync_message,
    encode_sync_message,
    fingerprint,
    fingerprint_of,
)
from protocol.sync_plan import (
    DIRECT_PUSH,
    SKETCH_PART,
    ReplyBuilder,
    SketchGroup,
    bound_between,
    estimate_density,
    even_cuts,
    ladder_cuts,
    plan_answer,
    sketch_parts,
)

__all__ = [
    "INFINITY",
    "MAX_IDS_PER_RANGE",
    "MAX_RANGES",
    "MAX_SKETCHES",
    "MAX_WANTED",
    "SYNC_VERSION",
    "Bound",
    "Mode",
    "Range",
    "Reconciler",
    "SyncMessage",
    "decode_sync_message",
    "encode_sync_message",
    "fingerprint",
]


class Reconciler:
    """One side of a reconciliation session over a sorted, duplicate-free item list."""

    def __init__(
        self,
        items: Sequence[Item],
        *,
        buckets: int = 16,
        leaf_buckets: int | None = None,
        leaf_items: int = 1024,
        id_list_threshold: int | None = None,
        max_message_bytes: int = 1 << 20,
        push_missing: bool = False,
        compact: bool = False,
        sketch: bool = False,
        sketch_builder: SketchBuilder | None = None,
    ) -> None:
        # Lists of 8-byte prefixes are cheap enough to list longer ranges, after
        # wider leaf splits (measured in benchmarks/sync.py: 1 % scattered loss of
        # 1 000 000 costs 304 B per missing item compact, 549 B in full forms).
        if leaf_buckets is None:
            leaf_buckets = 8 if compact else 4
        if id_list_threshold is None:
            id_list_threshold = 32 if compact else 8
        if not (2 <= leaf_buckets <= buckets <= 64 and 1 <= id_list_threshold <= MAX_IDS_PER_RANGE):
            raise LocalProtocolError("2 <= leaf_buckets <= buckets <= 64, id_list_threshold 1..256")
        if compact and not push_missing:
            raise LocalProtocolError("prefix lists need push_missing: the peer learns by records")
        if sketch and not compact:
            raise LocalProtocolError("sketches answer with prefixes: they need compact forms")
        self._items = list(items)
        for previous, item in zip(self._items, self._items[1:], strict=False):
            if not previous < item:
                raise LocalProtocolError("items must be sorted and unique")
        # Wide splits near the top find the differing regions in few round trips;
        # narrow ones near the leaves send fewer shared ids per difference (the
        # research note measured 2.4x instead of 5.2x ideal for scattered loss).
        self._buckets = buckets
        self._leaf_buckets = leaf_buckets
        self._leaf_items = leaf_items
        self._threshold = id_list_threshold
        # With push_missing, what the peer lacks is not listed back (32 bytes an
        # id): it only goes to `have`, and the caller sends the records themselves.
        self._push_missing = push_missing
        # With compact, small ranges are listed by 8-byte id prefixes (a
        # quarter of the bytes: the leaves are most of a scattered difference's
        # cost); the peer sends what we lack as records and names by prefix
        # (`wanted`) what it lacks, which we then send (`have`).
        self._compact = compact
        # With sketch, a differing range is described as a ladder of counted
        # sub-ranges, answered by sketches, prefix lists or a counted split
        # (SPEC §13, sketch forms); the peer must have named `sync-sketch`.
        self._sketch = sketch
        self._density: float | None = None  # differences per item, as last estimated
        # Tables and prefix matches over ranges of up to all our items: a node
        # injects a vectorised builder, giving the same bytes (node/gossip/sketch_fast.py).
        self._sketcher = sketch_builder or PureSketchBuilder()
        self._prefixes: bytes | None = None  # 8-byte id prefixes, built on first use
        self._budget = max_message_bytes
        self._sums = [0]
        for _, identifier in self._items:
            self._sums.append(self._sums[-1] + int.from_bytes(identifier, "little"))
        self.need: set[bytes] = set()
        self.have: set[bytes] = set()
        self.rounds = 0

    def _index(self, bound: Bound) -> int:
        return bisect.bisect_left(self._items, bound)

    def _fingerprint(self, start: int, stop: int) -> bytes:
        return fingerprint_of(self._sums[stop] - self._sums[start], stop - start)

    def _ids(self, start: int, stop: int) -> tuple[bytes, ...]:
        return tuple(identifier for _, identifier in self._items[start:stop])

    def initiate(self) -> bytes:
        """The first message: the whole universe, split or listed."""
        builder = ReplyBuilder(self._budget)
        self._describe(builder, ZERO, INFINITY)
        self.rounds += 1
        return encode_sync_message(builder.finish(self._tail))

    def receive(self, data: bytes) -> bytes | None:
        """Process the peer's message; return our reply, or None if we are done.

        Raises:
            DecodeError: the message is invalid (see `decode_sync_message`).
        """
        message = decode_sync_message(data)
        builder, lower, spans = ReplyBuilder(self._budget), ZERO, []
        for item in message.ranges:
            spans.append((lower, self._index(lower), self._index(item.upper)))
            lower = item.upper
        self._estimate(message.ranges, spans)
        group: SketchGroup | None = None
        for item, (lower, start, stop) in zip(message.ranges, spans, strict=True):
            if item.mode == Mode.COUNTED:
                group = self._answer_counted(builder, item, group, lower, start, stop)
                continue
            self._flush(builder, group)
            group = None
            self._answer(builder, item, lower, start, stop)
        self._flush(builder, group)
        reply = builder.finish(self._tail)
        if all(r.mode == Mode.SKIP for r in reply.ranges):
            return None
        self.rounds += 1
        return encode_sync_message(reply)

    def _answer_counted(
        self,
        builder: ReplyBuilder,
        item: Range,
        group: SketchGroup | None,
        lower: Bound,
        start: int,
        stop: int,
    ) -> SketchGroup | None:
        """Answer a counted range, or add it to the group of neighbours sketched together."""
        plan = ("skip", 0.0)
        if self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES] != item.fingerprint:
            plan = self._plan(start, stop, item.count, 0.0)
        if plan[0] == "sketch" or (plan[0] == "skip" and group is not None):
            # Neighbours with small differences share one table: its margin is
            # paid once (a matched range inside costs nothing but our time).
            group = group or SketchGroup(lower, start)
            group.add(item.upper, stop, plan[1])
            if group.expected < SKETCH_PART:
                return group
            self._flush(builder, group)
            return None
        self._flush(builder, group)
        if plan[0] == "skip":
            builder.skip(item.upper)
        else:
            self._act(builder, plan, lower, item.upper, start, stop)
        return None

    def _flush(self, builder: ReplyBuilder, group: SketchGroup | None) -> None:
        """Send the group's sketches (or a skip, if nothing in it differed)."""
        if group is not None and group.expected > 0:
            plan = ("sketch", group.expected)
            self._act(builder, plan, group.lower, group.upper, group.start, group.stop)
        elif group is not None:
            builder.skip(group.upper)

    def _estimate(self, ranges: Sequence[Range], spans: Sequence[tuple[Bound, int, int]]) -> None:
        """Estimate the density of the difference from the counted ranges that differ.

        A range of s items matches with probability (1 - p)^s ~ exp(-p s) when
        differences are scattered at density p; over a ladder of sizes 1, 4,
        16, ... the maximum-likelihood p is found by bisection.
        """
        matched, differing = 0, list[int]()
        for item, (_, start, stop) in zip(ranges, spans, strict=True):
            if item.mode != Mode.COUNTED or len(differing) >= 1024:
                continue
            size = max(item.count, stop - start)
            if self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES] == item.fingerprint:
                matched += size
            else:
                differing.append(max(size, 1))
        if differing or matched:
            self._density = estimate_density(matched, differing)

    def _answer(
        self, builder: ReplyBuilder, item: Range, lower: Bound, start: int, stop: int
    ) -> None:
        if item.mode == Mode.SKIP:
            builder.skip(item.upper)
        elif item.mode in (Mode.FINGERPRINT, Mode.FINGERPRINT8):
            self._answer_fingerprint(builder, item, lower, start, stop)
        elif item.mode == Mode.COUNTED:
            if self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES] == item.fingerprint:
                builder.skip(item.upper)
            else:
                self._resolve(builder, lower, item.upper, start, stop, item.count, 0.0)
        elif item.mode == Mode.SKETCH:
            self._answer_sketch(builder, item, lower, start, stop)
        elif item.mode == Mode.MISSING:
            self.need.update(item.ids)
            builder.skip(item.upper)
        elif item.mode == Mode.PREFIX_LIST:
            self._answer_prefix_list(builder, item, lower, start, stop)
        elif item.mode == Mode.WANTED:
            self._answer_wanted(builder, item, start, stop)
        else:
            self._answer_id_list(builder, item, start, stop)

    def _answer_fingerprint(
        self, builder: ReplyBuilder, item: Range, lower: Bound, start: int, stop: int
    ) -> None:
        if self._fingerprint(start, stop)[: len(item.fingerprint)] == item.fingerprint:
            builder.skip(item.upper)
        elif self._sketch and stop - start > self._threshold:
            self._ladder(builder, item.upper, start, stop)
        else:
            self._describe(builder, lower, item.upper)

    def _answer_prefix_list(
        self, builder: ReplyBuilder, item: Range, lower: Bound, start: int, stop: int
    ) -> None:
        if self._sketch and MAX_IDS_PER_RANGE < stop - start <= DIRECT_PUSH:
            pass  # the list names the peer's whole range: answer it exactly, at once
        elif self._sketch and stop - start > MAX_IDS_PER_RANGE:
            # Too many of ours to send at once; smaller pieces (counted, so the
            # peer answers each exactly) until they fit. A sketch here could
            # fail again and again: the peer would list the same range back.
            self._split_counted(builder, item.upper, start, stop)
            return
        elif stop - start > MAX_IDS_PER_RANGE:
            self._split(builder, item.upper, start, stop)
            return
        mine = self._ids(start, stop)
        theirs = set(item.split_prefixes())
        # A prefix list obliges us to send the records it lacks (SPEC §13).
        self.have.update(m for m in mine if m[:ID_PREFIX_BYTES] not in theirs)
        ours = {m[:ID_PREFIX_BYTES] for m in mine}
        wanted = dict.fromkeys(p for p in item.split_prefixes() if p not in ours)
        if wanted:
            builder.add(Range(item.upper, Mode.WANTED, prefixes=b"".join(wanted)))
        else:
            builder.skip(item.upper)

    def _answer_wanted(self, builder: ReplyBuilder, item: Range, start: int, stop: int) -> None:
        wanted = set(item.split_prefixes())
        matches = [m for m in self._ids(start, stop) if m[:ID_PREFIX_BYTES] in wanted]
        matches = matches[:MAX_WANTED]
        if self._push_missing:
            self.have.update(matches)
            builder.skip(item.upper)
        elif matches:
            builder.add(Range(item.upper, Mode.MISSING, ids=tuple(sorted(matches))))
        else:
            builder.skip(item.upper)

    def _answer_id_list(self, builder: ReplyBuilder, item: Range, start: int, stop: int) -> None:
        mine = set(self._ids(start, stop))
        theirs = set(item.ids)
        self.need.update(theirs - mine)
        if stop - start <= MAX_IDS_PER_RANGE:
            missing = mine - theirs
            self.have.update(missing)
            if missing and not self._push_missing:
                builder.add(Range(item.upper, Mode.MISSING, ids=tuple(sorted(missing))))
            else:
                builder.skip(item.upper)
        else:
            # Too many of ours to list: split, and the peer lists per bucket.
            self._split(builder, item.upper, start, stop)

    def _answer_sketch(
        self, builder: ReplyBuilder, item: Range, lower: Bound, start: int, stop: int
    ) -> None:
        table = Sketch.decode(item.sketch)
        cells = len(table.counts)
        salt = range_salt(lower, item.upper, cells)
        own = Sketch.decode(
            self._sketcher.build_table(self._prefix_slice(start, stop), cells=cells, salt=salt)
        )
        decoded = decode_difference(table, own, salt)
        found = None if decoded is None else self._match(decoded.ours, start, stop)
        if decoded is None or found is None or len(decoded.theirs) > MAX_WANTED:
            # Too small for the difference (or not a table of ids at all): again,
            # sized for at least twice what this one could hold.
            floor = 2.0 * cells / 1.3
            self._resolve(builder, lower, item.upper, start, stop, item.count, floor)
            return
        self.have.update(found)
        if decoded.theirs:
            wanted = b"".join(k.to_bytes(ID_PREFIX_BYTES, "big") for k in sorted(decoded.theirs))
            builder.add(Range(item.upper, Mode.WANTED, prefixes=wanted))
        else:
            builder.skip(item.upper)

    def _match(self, keys: frozenset[int], start: int, stop: int) -> list[bytes] | None:
        """Our ids in [start, stop) with these prefixes; None if one has no such id."""
        if not keys:
            return []
        where = self._sketcher.match_prefixes(self._prefix_slice(start, stop), keys)
        if where is None:
            return None
        return [self._items[start + k][1] for k in where]

    def _prefix_slice(self, start: int, stop: int) -> bytes:
        """The 8-byte prefixes of our ids in [start, stop), back to back."""
        if self._prefixes is None:
            self._prefixes = b"".join(identifier[:ID_PREFIX_BYTES] for _, identifier in self._items)
        return self._prefixes[ID_PREFIX_BYTES * start : ID_PREFIX_BYTES * stop]

    def _resolve(
        self,
        builder: ReplyBuilder,
        lower: Bound,
        upper: Bound,
        start: int,
        stop: int,
        theirs: int,
        floor: float,
    ) -> None:
        """Answer a range known to differ, of which the peer holds `theirs` items."""
        self._act(builder, self._plan(start, stop, theirs, floor), lower, upper, start, stop)

    def _plan(self, start: int, stop: int, theirs: int, floor: float) -> tuple[str, float]:
        """How to answer a differing range (see `protocol.sync_plan.plan_answer`)."""
        d = self._density or 0.0
        return plan_answer(stop - start, theirs, floor=floor, density=d, threshold=self._threshold)

    def _act(
        self,
        builder: ReplyBuilder,
        plan: tuple[str, float],
        lower: Bound,
        upper: Bound,
        start: int,
        stop: int,
    ) -> None:
        kind, expected = plan
        if kind == "push":
            self.have.update(self._ids(start, stop))
            builder.skip(upper)
        elif kind == "prefix":
            self._prefix_lists(builder, upper, start, stop)
        elif kind == "split":
            self._split_counted(builder, upper, start, stop)
        else:
            parts = sketch_parts(expected, stop - start)
            cells = cells_for(expected / parts)
            self._sketches(builder, lower, upper, start, stop, parts, cells)

    def _pieces(
        self, upper: Bound, start: int, stop: int, cuts: Sequence[int]
    ) -> list[tuple[Bound, int, int]]:
        """Each piece the cuts make: its upper bound (the last one's is `upper`), start, stop."""
        bounds = [bound_between(self._items[c - 1], self._items[c]) for c in cuts]
        edges = itertools.pairwise((start, *cuts, stop))
        return [(bound, a, b) for bound, (a, b) in zip([*bounds, upper], edges, strict=True)]

    def _prefix_lists(self, builder: ReplyBuilder, upper: Bound, start: int, stop: int) -> None:
        cuts = range(start + MAX_IDS_PER_RANGE, stop, MAX_IDS_PER_RANGE)
        for bound, a, b in self._pieces(upper, start, stop, cuts):
            prefixes = b"".join(m[:ID_PREFIX_BYTES] for m in self._ids(a, b))
            builder.add(Range(bound, Mode.PREFIX_LIST, prefixes=prefixes))

    def _counted(self, upper: Bound, start: int, stop: int) -> Range:
        short = self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES]
        return Range(upper, Mode.COUNTED, fingerprint=short, count=stop - start)

    def _ladder(self, builder: ReplyBuilder, upper: Bound, start: int, stop: int) -> None:
        """Counted sub-ranges of 1, 4, 16, ... items, then the rest: samples at every scale."""
        self._add_counted(builder, upper, start, stop, ladder_cuts(start, stop))

    def _split_counted(self, builder: ReplyBuilder, upper: Bound, start: int, stop: int) -> None:
        self._add_counted(builder, upper, start, stop, even_cuts(start, stop, self._buckets))

    def _add_counted(
        self, builder: ReplyBuilder, upper: Bound, start: int, stop: int, cuts: Sequence[int]
    ) -> None:
        for bound, a, b in self._pieces(upper, start, stop, cuts):
            builder.add(self._counted(bound, a, b))

    def _sketches(
        self,
        builder: ReplyBuilder,
        lower: Bound,
        upper: Bound,
        start: int,
        stop: int,
        parts: int,
        cells: int,
    ) -> None:
        part_lower = lower
        for bound, a, b in self._pieces(upper, start, stop, even_cuts(start, stop, parts)):
            if builder.folded:
                return
            salt = range_salt(part_lower, bound, cells)
            table = self._sketcher.build_table(self._prefix_slice(a, b), cells=cells, salt=salt)
            builder.add(Range(bound, Mode.SKETCH, count=b - a, sketch=table))
            part_lower = bound

    def _describe(self, builder: ReplyBuilder, lower: Bound, upper: Bound) -> None:
        start, stop = self._index(lower), self._index(upper)
        if stop - start <= self._threshold and self._compact:
            prefixes = b"".join(m[:ID_PREFIX_BYTES] for m in self._ids(start, stop))
            builder.add(Range(upper, Mode.PREFIX_LIST, prefixes=prefixes))
        elif stop - start <= self._threshold:
            builder.add(Range(upper, Mode.ID_LIST, ids=self._ids(start, stop)))
        else:
            self._split(builder, upper, start, stop)

    def _split(self, builder: ReplyBuilder, upper: Bound, start: int, stop: int) -> None:
        buckets = self._buckets if stop - start > self._leaf_items else self._leaf_buckets
        for bound, a, b in self._pieces(upper, start, stop, even_cuts(start, stop, buckets)):
            builder.add(self._fingerprint_range(bound, a, b))

    def _tail(self, lower: Bound) -> Range:
        """One fingerprint of everything from `lower` on: the rest of a folded reply."""
        return self._fingerprint_range(INFINITY, self._index(lower), len(self._items))

    def _fingerprint_range(self, upper: Bound, start: int, stop: int) -> Range:
        if self._compact:
            short = self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES]
            return Range(upper, Mode.FINGERPRINT8, short)
        return Range(upper, Mode.FINGERPRINT, self._fingerprint(start, stop))
