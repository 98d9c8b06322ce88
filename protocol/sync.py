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

`sketch` (for a peer whose hello names `sync-sketch`, SPEC §13, sketch forms) adds two
modes for scattered differences: fingerprints that carry their range's count
(7), and invertible Bloom lookup tables of a range's id prefixes (8,
`protocol.sketch`). A side that sees a fingerprint differ describes the range
as a *ladder* of counted sub-ranges of sizes 1, 4, 16, ...; the peer estimates
the density of the difference from which of them differ (and how the counts
differ), and answers each differing range with the cheapest of: a prefix list,
sketches sized for the estimated difference, or (for a difference much denser
than elsewhere: a cluster) a 16-way counted split. A sketch that decodes names
every difference in its range at about 18 bytes each, whatever the range's
size; one that does not is described again, twice as large.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from protocol.attestation import ID_PREFIX_BYTES, MAX_TIME_MS, split_id_prefixes
from protocol.codec import Value, pack, unpack
from protocol.errors import DecodeError, FieldError, LocalProtocolError, Reason
from protocol.sketch import (
    CELL_BYTES,
    U64,
    Sketch,
    cells_for,
    decode_difference,
    prefix_keys,
    range_salt,
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

SYNC_VERSION = 1
ID_BYTES = 32
FINGERPRINT_BYTES = 16
SHORT_FINGERPRINT_BYTES = 8  # mode 6: a fingerprint's first 8 bytes
MAX_RANGES = 8192
MAX_IDS_PER_RANGE = 256
MAX_WANTED = 4096  # prefixes in one wanted range: a decoded sketch may name that many
MAX_COUNT = 2**32 - 1
# Sketches in one message: each costs its receiver a table over its range, so a
# peer may not send thousands of tiny ones (ours: a few dozen per message).
MAX_SKETCHES = 512
_LADDER_BASE = 4  # counted sub-ranges of 1, 4, 16, ... items, then the rest
_SKETCH_PART = 1000  # expected differences per sketch: a failure costs one part
_DIRECT_PUSH = 4096  # records sent at once for a range the peer holds nothing of
_CLUSTER = 4.0  # a range this many times denser in differences than the estimate
_FP_DOMAIN = b"trustnode/sync-fingerprint/v1\x00"
_MODULUS = 2**256

Bound = tuple[int, bytes]
Item = tuple[int, bytes]
INFINITY: Bound = (MAX_TIME_MS + 1, b"")
_ZERO: Bound = (0, b"")


class Mode:
    """Range modes on the wire (SPEC §13.2)."""

    SKIP = 0
    FINGERPRINT = 1
    ID_LIST = 2
    MISSING = 3
    PREFIX_LIST = 4
    WANTED = 5
    FINGERPRINT8 = 6
    COUNTED = 7
    SKETCH = 8


@dataclass(frozen=True, slots=True)
class Range:
    """One range of a message: everything from the previous upper bound to `upper`."""

    upper: Bound
    mode: int
    fingerprint: bytes = b""
    ids: tuple[bytes, ...] = ()
    prefixes: bytes = b""  # modes 4 and 5: 8-byte id prefixes, back to back
    count: int = 0  # modes 7 and 8: how many items the sender holds in the range
    sketch: bytes = b""  # mode 8: the table (protocol.sketch)

    def split_prefixes(self) -> list[bytes]:
        """`prefixes` as a list of 8-byte prefixes."""
        return split_id_prefixes(self.prefixes)


@dataclass(frozen=True, slots=True)
class SyncMessage:
    """Consecutive ranges covering the whole universe, the last ending at INFINITY."""

    ranges: tuple[Range, ...]


def fingerprint(ids: Sequence[bytes]) -> bytes:
    """The fingerprint of a set of ids: H(domain || sum mod 2**256 || count)[:16]."""
    total = sum(int.from_bytes(i, "little") for i in ids) % _MODULUS
    return _fingerprint_of(total, len(ids))


def _fingerprint_of(total: int, count: int) -> bytes:
    material = _FP_DOMAIN + total.to_bytes(32, "little") + count.to_bytes(4, "big")
    return hashlib.blake2b(material, digest_size=32).digest()[:FINGERPRINT_BYTES]


def _range_value(item: Range) -> Value:
    payload: Value
    if item.mode in (Mode.FINGERPRINT, Mode.FINGERPRINT8):
        payload = item.fingerprint
    elif item.mode in (Mode.ID_LIST, Mode.MISSING):
        payload = item.ids
    elif item.mode in (Mode.PREFIX_LIST, Mode.WANTED):
        payload = item.prefixes
    elif item.mode == Mode.COUNTED:
        payload = (item.fingerprint, item.count)
    elif item.mode == Mode.SKETCH:
        payload = (item.count, item.sketch)
    else:
        payload = None
    return (item.upper[0], item.upper[1], item.mode, payload)


def encode_sync_message(message: SyncMessage) -> bytes:
    """Canonical msgpack `[1, [[ts, prefix, mode, payload], ...]]`."""
    return pack((SYNC_VERSION, tuple(_range_value(r) for r in message.ranges)))


def decode_sync_message(data: bytes) -> SyncMessage:
    """Decode and validate a reconciliation message.

    Raises:
        DecodeError: `MALFORMED`, `TRAILING_BYTES`, `UNKNOWN_VERSION`,
            `BAD_FIELD`, `OUT_OF_RANGE` (bounds not increasing, not ending at
            infinity, ids outside their range, too many ranges or ids) or
            `NON_CANONICAL`.
    """
    obj = unpack(data)
    if type(obj) is not tuple or len(obj) != 2 or type(obj[0]) is not int:
        raise DecodeError(Reason.MALFORMED, "a sync message is [version, ranges]")
    if obj[0] != SYNC_VERSION:
        raise DecodeError(Reason.UNKNOWN_VERSION, f"sync version {obj[0]}")
    if type(obj[1]) is not tuple or not 1 <= len(obj[1]) <= MAX_RANGES:
        raise DecodeError(Reason.OUT_OF_RANGE, "1..8192 ranges")
    try:
        ranges = _decode_ranges(obj[1])
    except FieldError as exc:
        raise DecodeError(exc.reason, str(exc)) from exc
    message = SyncMessage(ranges)
    if encode_sync_message(message) != data:
        raise DecodeError(Reason.NON_CANONICAL, "sync message encoding")
    return message


def _fail(reason: Reason, message: str) -> FieldError:
    return FieldError(reason, message)


def _decode_ranges(raw: tuple[object, ...]) -> tuple[Range, ...]:
    ranges, lower = [], _ZERO
    for entry in raw:
        if type(entry) is not tuple or len(entry) != 4:
            raise _fail(Reason.BAD_FIELD, "a range is [ts, prefix, mode, payload]")
        ts, prefix, mode, payload = entry
        if type(ts) is not int or type(prefix) is not bytes or type(mode) is not int:
            raise _fail(Reason.BAD_FIELD, "range bound or mode")
        upper = (ts, prefix)
        if not (0 <= ts <= INFINITY[0] and len(prefix) <= ID_BYTES and upper > lower):
            raise _fail(Reason.OUT_OF_RANGE, "bounds must increase within the universe")
        ranges.append(_decode_payload(upper, lower, mode, payload))
        lower = upper
    if lower != INFINITY:
        raise _fail(Reason.OUT_OF_RANGE, "the last range must end at infinity")
    if sum(r.mode == Mode.SKETCH for r in ranges) > MAX_SKETCHES:
        raise _fail(Reason.OUT_OF_RANGE, f"at most {MAX_SKETCHES} sketches per message")
    return tuple(ranges)


def _decode_ids(payload: object) -> tuple[bytes, ...]:
    if type(payload) is not tuple or len(payload) > MAX_IDS_PER_RANGE:
        raise _fail(Reason.OUT_OF_RANGE, "at most 256 ids per range")
    for item in payload:
        if type(item) is not bytes or len(item) != ID_BYTES:
            raise _fail(Reason.BAD_FIELD, "an id has 32 bytes")
    return payload


_FINGERPRINT_SIZES = {
    Mode.FINGERPRINT: FINGERPRINT_BYTES,
    Mode.FINGERPRINT8: SHORT_FINGERPRINT_BYTES,
}


def _decode_payload(upper: Bound, lower: Bound, mode: int, payload: object) -> Range:
    if mode == Mode.SKIP and payload is None:
        return Range(upper, mode)
    if mode in _FINGERPRINT_SIZES:
        if type(payload) is not bytes or len(payload) != _FINGERPRINT_SIZES[mode]:
            raise _fail(
                Reason.BAD_FIELD, f"a mode {mode} fingerprint has {_FINGERPRINT_SIZES[mode]} bytes"
            )
        return Range(upper, mode, fingerprint=payload)
    if mode in (Mode.ID_LIST, Mode.MISSING):
        return Range(upper, mode, ids=_decode_ids(payload))
    if mode in (Mode.PREFIX_LIST, Mode.WANTED):
        if type(payload) is not bytes:
            raise _fail(Reason.BAD_FIELD, "a prefix list is one bin")
        limit = MAX_IDS_PER_RANGE if mode == Mode.PREFIX_LIST else MAX_WANTED
        if len(payload) % ID_PREFIX_BYTES or len(payload) > limit * ID_PREFIX_BYTES:
            raise _fail(Reason.OUT_OF_RANGE, f"at most {limit} prefixes of 8 bytes per range")
        return Range(upper, mode, prefixes=payload)
    if mode in (Mode.COUNTED, Mode.SKETCH):
        return _decode_counted(upper, mode, payload)
    raise _fail(Reason.BAD_FIELD, f"range mode {mode}")


def _decode_counted(upper: Bound, mode: int, payload: object) -> Range:
    """Modes 7 `[fingerprint8, count]` and 8 `[count, table]` (SPEC §13, sketch forms)."""
    if type(payload) is not tuple or len(payload) != 2:
        raise _fail(Reason.BAD_FIELD, f"a mode {mode} payload is a pair")
    first, second = payload
    fp, count, table = (first, second, b"") if mode == Mode.COUNTED else (b"", first, second)
    if mode == Mode.COUNTED and (type(fp) is not bytes or len(fp) != SHORT_FINGERPRINT_BYTES):
        raise _fail(Reason.BAD_FIELD, "a counted fingerprint has 8 bytes")
    if type(count) is not int or type(table) is not bytes:
        raise _fail(Reason.BAD_FIELD, "a count is an int, a sketch a bin")
    if not 0 <= count <= MAX_COUNT:
        raise _fail(Reason.OUT_OF_RANGE, "a count is below 2**32")
    if mode == Mode.SKETCH:
        Sketch.decode(table)  # length checks (FieldError)
    return Range(upper, mode, fingerprint=fp, count=count, sketch=table)


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
        self._keys: U64 | None = None  # id prefixes as uint64, built on first use
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
        return _fingerprint_of((self._sums[stop] - self._sums[start]) % _MODULUS, stop - start)

    def _ids(self, start: int, stop: int) -> tuple[bytes, ...]:
        return tuple(identifier for _, identifier in self._items[start:stop])

    def initiate(self) -> bytes:
        """The first message: the whole universe, split or listed."""
        builder = _Builder(self._budget)
        self._describe(builder, _ZERO, INFINITY)
        self.rounds += 1
        return encode_sync_message(builder.finish(self))

    def receive(self, data: bytes) -> bytes | None:
        """Process the peer's message; return our reply, or None if we are done.

        Raises:
            DecodeError: the message is invalid (see `decode_sync_message`).
        """
        message = decode_sync_message(data)
        builder, lower, spans = _Builder(self._budget), _ZERO, []
        for item in message.ranges:
            spans.append((lower, self._index(lower), self._index(item.upper)))
            lower = item.upper
        self._estimate(message.ranges, spans)
        group: _Group | None = None
        for item, (lower, start, stop) in zip(message.ranges, spans, strict=True):
            if item.mode == Mode.COUNTED:
                group = self._answer_counted(builder, item, group, lower, start, stop)
                continue
            self._flush(builder, group)
            group = None
            self._answer(builder, item, lower, start, stop)
        self._flush(builder, group)
        reply = builder.finish(self)
        if all(r.mode == Mode.SKIP for r in reply.ranges):
            return None
        self.rounds += 1
        return encode_sync_message(reply)

    def _answer_counted(
        self,
        builder: _Builder,
        item: Range,
        group: _Group | None,
        lower: Bound,
        start: int,
        stop: int,
    ) -> _Group | None:
        """Answer a counted range, or add it to the group of neighbours sketched together."""
        plan = ("skip", 0.0)
        if self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES] != item.fingerprint:
            plan = self._plan(start, stop, item.count, 0.0)
        if plan[0] == "sketch" or (plan[0] == "skip" and group is not None):
            # Neighbours with small differences share one table: its margin is
            # paid once (a matched range inside costs nothing but our time).
            group = group or _Group(lower, start)
            group.add(item.upper, stop, plan[1])
            if group.expected < _SKETCH_PART:
                return group
            self._flush(builder, group)
            return None
        self._flush(builder, group)
        if plan[0] == "skip":
            builder.skip(item.upper)
        else:
            self._act(builder, plan, lower, item.upper, start, stop)
        return None

    def _flush(self, builder: _Builder, group: _Group | None) -> None:
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
            self._density = _density(matched, differing)

    def _answer(self, builder: _Builder, item: Range, lower: Bound, start: int, stop: int) -> None:
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
        self, builder: _Builder, item: Range, lower: Bound, start: int, stop: int
    ) -> None:
        if self._fingerprint(start, stop)[: len(item.fingerprint)] == item.fingerprint:
            builder.skip(item.upper)
        elif self._sketch and stop - start > self._threshold:
            self._ladder(builder, item.upper, start, stop)
        else:
            self._describe(builder, lower, item.upper)

    def _answer_prefix_list(
        self, builder: _Builder, item: Range, lower: Bound, start: int, stop: int
    ) -> None:
        if self._sketch and MAX_IDS_PER_RANGE < stop - start <= _DIRECT_PUSH:
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

    def _answer_wanted(self, builder: _Builder, item: Range, start: int, stop: int) -> None:
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

    def _answer_id_list(self, builder: _Builder, item: Range, start: int, stop: int) -> None:
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
        self, builder: _Builder, item: Range, lower: Bound, start: int, stop: int
    ) -> None:
        table = Sketch.decode(item.sketch)
        cells = len(table.counts)
        salt = range_salt(lower, item.upper, cells)
        own = Sketch.build(self._prefix_keys()[start:stop], cells, salt)
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
        wanted = np.fromiter(keys, dtype=np.uint64, count=len(keys))
        mine = self._prefix_keys()[start:stop]
        where = np.flatnonzero(np.isin(mine, wanted))
        if len(np.unique(mine[where])) != len(keys):
            return None
        return [self._items[start + int(k)][1] for k in where]

    def _prefix_keys(self) -> U64:
        if self._keys is None:
            joined = b"".join(identifier[:ID_PREFIX_BYTES] for _, identifier in self._items)
            self._keys = prefix_keys(joined)
        return self._keys

    def _resolve(
        self,
        builder: _Builder,
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
        """How to answer a differing range: `push`, `prefix`, `split` or `sketch`.

        The expected difference is the gap between the counts, the estimated
        density times the size, or `floor` (after a sketch failed), whichever
        is largest; the answer is the cheapest form for it. With `sketch`
        comes the expected difference, so that neighbours can share tables.
        """
        ours = stop - start
        if theirs == 0 and ours <= _DIRECT_PUSH:
            return ("push", 0.0)  # the peer holds nothing here
        if ours <= self._threshold:
            return ("prefix", 0.0)
        if theirs == 0:
            return ("split", 0.0)
        gap, size, density = abs(theirs - ours), max(theirs, ours), self._density or 0.0
        expected = max(gap, density * size, floor, 1.0)
        parts = min(math.ceil(expected / _SKETCH_PART), max(1, ours // 2))
        sketch_cost = parts * (CELL_BYTES * cells_for(expected / parts) + 24)
        prefix_cost = ID_PREFIX_BYTES * ours + 24 * math.ceil(ours / MAX_IDS_PER_RANGE)
        if prefix_cost <= sketch_cost:
            return ("prefix", 0.0)
        if floor == 0 and gap > _CLUSTER * density * size and ours > 16 * self._threshold:
            # Far denser here than elsewhere: a cluster (a node that was away);
            # a split finds its edges in one round trip, as range descent does.
            return ("split", 0.0)
        return ("sketch", expected)

    def _act(
        self,
        builder: _Builder,
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
            parts = min(math.ceil(expected / _SKETCH_PART), max(1, (stop - start) // 2))
            cells = cells_for(expected / parts)
            self._sketches(builder, lower, upper, start, stop, parts, cells)

    def _cuts(self, start: int, stop: int, pieces: int) -> list[int]:
        count = stop - start
        return sorted({start + count * k // pieces for k in range(1, pieces)} - {start, stop})

    def _bounded(self, upper: Bound, cuts: Sequence[int]) -> list[Bound]:
        """The upper bound of each piece that the cuts make, the last being `upper`."""
        bounds = [_bound_between(self._items[c - 1], self._items[c]) for c in cuts]
        return [*bounds, upper]

    def _prefix_lists(self, builder: _Builder, upper: Bound, start: int, stop: int) -> None:
        cuts = list(range(start + MAX_IDS_PER_RANGE, stop, MAX_IDS_PER_RANGE))
        for bound, (a, b) in zip(
            self._bounded(upper, cuts), zip([start, *cuts], [*cuts, stop], strict=True), strict=True
        ):
            prefixes = b"".join(m[:ID_PREFIX_BYTES] for m in self._ids(a, b))
            builder.add(Range(bound, Mode.PREFIX_LIST, prefixes=prefixes))

    def _counted(self, upper: Bound, start: int, stop: int) -> Range:
        short = self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES]
        return Range(upper, Mode.COUNTED, fingerprint=short, count=stop - start)

    def _ladder(self, builder: _Builder, upper: Bound, start: int, stop: int) -> None:
        """Counted sub-ranges of 1, 4, 16, ... items, then the rest: samples at every scale."""
        cuts, size, position = [], 1, start
        while position + size - start <= (stop - start) // 2:
            position += size
            cuts.append(position)
            size *= _LADDER_BASE
        self._add_counted(builder, upper, start, stop, cuts)

    def _split_counted(self, builder: _Builder, upper: Bound, start: int, stop: int) -> None:
        self._add_counted(builder, upper, start, stop, self._cuts(start, stop, self._buckets))

    def _add_counted(
        self, builder: _Builder, upper: Bound, start: int, stop: int, cuts: Sequence[int]
    ) -> None:
        edges = zip([start, *cuts], [*cuts, stop], strict=True)
        for bound, (a, b) in zip(self._bounded(upper, cuts), edges, strict=True):
            builder.add(self._counted(bound, a, b))

    def _sketches(
        self,
        builder: _Builder,
        lower: Bound,
        upper: Bound,
        start: int,
        stop: int,
        parts: int,
        cells: int,
    ) -> None:
        cuts = self._cuts(start, stop, parts)
        keys = self._prefix_keys()
        part_lower = lower
        edges = zip([start, *cuts], [*cuts, stop], strict=True)
        for bound, (a, b) in zip(self._bounded(upper, cuts), edges, strict=True):
            if builder.folded:
                return
            table = Sketch.build(keys[a:b], cells, range_salt(part_lower, bound, cells))
            builder.add(Range(bound, Mode.SKETCH, count=b - a, sketch=table.encode()))
            part_lower = bound

    def _describe(self, builder: _Builder, lower: Bound, upper: Bound) -> None:
        start, stop = self._index(lower), self._index(upper)
        if stop - start <= self._threshold and self._compact:
            prefixes = b"".join(m[:ID_PREFIX_BYTES] for m in self._ids(start, stop))
            builder.add(Range(upper, Mode.PREFIX_LIST, prefixes=prefixes))
        elif stop - start <= self._threshold:
            builder.add(Range(upper, Mode.ID_LIST, ids=self._ids(start, stop)))
        else:
            self._split(builder, upper, start, stop)

    def _split(self, builder: _Builder, upper: Bound, start: int, stop: int) -> None:
        count = stop - start
        buckets = self._buckets if count > self._leaf_items else self._leaf_buckets
        edges = [start + count * k // buckets for k in range(1, buckets)]
        cuts = sorted({e for e in edges if start < e < stop})
        bucket_start = start
        for cut in cuts:
            bound = _bound_between(self._items[cut - 1], self._items[cut])
            builder.add(self._fingerprint_range(bound, bucket_start, cut))
            bucket_start = cut
        builder.add(self._fingerprint_range(upper, bucket_start, stop))

    def _fingerprint_range(self, upper: Bound, start: int, stop: int) -> Range:
        if self._compact:
            short = self._fingerprint(start, stop)[:SHORT_FINGERPRINT_BYTES]
            return Range(upper, Mode.FINGERPRINT8, short)
        return Range(upper, Mode.FINGERPRINT, self._fingerprint(start, stop))


def _bound_between(previous: Item, following: Item) -> Bound:
    """The shortest bound b with previous < b <= following."""
    if previous[0] != following[0]:
        return (following[0], b"")
    common = 0
    while previous[1][common] == following[1][common]:
        common += 1
    return (following[0], following[1][: common + 1])


@dataclass(slots=True)
class _Group:
    """Consecutive differing ranges answered by one set of sketches."""

    lower: Bound
    start: int
    upper: Bound = _ZERO
    stop: int = 0
    expected: float = 0.0

    def add(self, upper: Bound, stop: int, expected: float) -> None:
        self.upper, self.stop = upper, stop
        self.expected += expected


class _Builder:
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

    def finish(self, owner: Reconciler) -> SyncMessage:
        if self._folded_from is not None:
            start = owner._index(self._folded_from)
            stop = len(owner._items)
            self._ranges.append(owner._fingerprint_range(INFINITY, start, stop))
        elif not self._ranges or self._ranges[-1].upper != INFINITY:
            self.skip(INFINITY)
        return SyncMessage(tuple(self._ranges))


def _density(matched: int, differing: Sequence[int]) -> float:
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
