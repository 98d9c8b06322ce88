"""Distance-vector routes to every issuing member, for source-rooted push trees (SPEC §9.4).

One push tree shared by every source is deep: on 1000 members with about six
links each, the best single spanning tree still needs 9 hops for 99 % of them,
while a flood needs 5 (`simulations/tree_bound.py`). A shortest-path tree per
source meets both a flood's hops and a tree's single copy, but forming it by
flooding each source's first message costs a flood per source, and in a
community most attestations come from members who issued little before.

So each node learns the tree *before* any message: it keeps its hop distance
to every member it has heard of, as distance-vector routing does (RIP,
RFC 2453), and tells each neighbour its distances, marking the one it routes
through ("you are my parent for this source": split horizon with poisoned
reverse, and the tree's edges). A node then pushes an attestation by issuer S
to exactly the neighbours that named it their parent for S: reverse-path
forwarding along S's shortest-path tree (DVMRP, RFC 1075, without the flood).

`RouteTable` is that state machine, sans-I/O: feed it a neighbour's entries
with `receive`, tell it of links with `add_peer`/`remove_peer`, read each
neighbour's role for a source with `role`, and take what to tell each
neighbour with `updates_for`. Distances beyond `max_hops` are unreachable,
which bounds counting to infinity after a member leaves.

Routes are hints, never trusted for safety: a neighbour that lies about its
distances can attract a source's pushes and drop them, and the receivers
behind it then fetch what their other neighbours announce (SPEC §9.3) a graft
timeout later. What a table holds per neighbour is bounded (`max_sources`).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence
from typing import TypeAlias

from protocol.attestation import ID_PREFIX_BYTES
from protocol.errors import DecodeError, Reason

__all__ = [
    "DEFAULT_MAX_HOPS",
    "DEFAULT_MAX_SOURCES",
    "ROUTE_ENTRY_BYTES",
    "UNREACHABLE",
    "Role",
    "Route",
    "RouteTable",
    "decode_routes",
    "encode_routes",
    "source_key",
]

ROUTE_ENTRY_BYTES = ID_PREFIX_BYTES + 1
UNREACHABLE = 0x7F  # the distance byte of a withdrawn route
_PARENT = 0x80  # flag bit: "you are my parent for this source"
DEFAULT_MAX_HOPS = 32
DEFAULT_MAX_SOURCES = 65_536


def source_key(identity: bytes) -> bytes:
    """The key a route is kept under: the first 8 bytes of the member's identity."""
    return identity[:ID_PREFIX_BYTES]


# One entry of a routes message: (source, distance, parent). The source is an
# 8-byte identity prefix; the distance is in hops from the sender (UNREACHABLE
# withdraws); parent: the receiver is the sender's next hop towards the source.
# Plain tuples: tables take millions of them when a community forms.
Route: TypeAlias = tuple[bytes, int, bool]


# A community forming moves millions of entries through these two functions
# (about members x links, then the waves each new link causes): both avoid
# per-entry Python work where the standard library does it in C.
_ENTRY = struct.Struct(f"{ID_PREFIX_BYTES}sB")
_FLAGS = [bytes([flags]) for flags in range(256)]


def encode_routes(routes: Iterable[Route]) -> bytes:
    """9 bytes per route: the source's 8-byte prefix, then parent bit | distance."""
    flags = _FLAGS
    return b"".join(
        source + flags[_PARENT | distance if parent else distance]
        for source, distance, parent in routes
    )


def decode_routes(data: bytes) -> list[Route]:
    """Parse the entries of a routes message (shape already checked by the wire).

    Raises:
        DecodeError: `OUT_OF_RANGE` for a withdrawn route marked as parent.
    """
    if len(data) % ROUTE_ENTRY_BYTES:
        raise DecodeError(Reason.OUT_OF_RANGE, f"routes come in {ROUTE_ENTRY_BYTES}-byte entries")
    if _FLAGS[_PARENT | UNREACHABLE] in data[ID_PREFIX_BYTES::ROUTE_ENTRY_BYTES]:
        raise DecodeError(Reason.OUT_OF_RANGE, "a withdrawn route cannot name a parent")
    return [
        (source, flags & UNREACHABLE, flags > UNREACHABLE)
        for source, flags in _ENTRY.iter_unpack(data)
    ]


class Role(enum.Enum):
    """What a neighbour is to us in one source's tree."""

    CHILD = "child"  # it named us its parent: push to it
    OTHER = "other"  # it routes elsewhere: announce to it
    UNKNOWN = "unknown"  # it told us nothing of this source: fall back to the shared tree


# Our route to a source: (distance, the neighbour we route through; None: the
# source is us). Tuples, not objects: a table changes them millions of times.
_Best: TypeAlias = tuple[int, bytes | None]
# What a neighbour told us of a source, or what we told it: the entry's flags
# byte (parent bit | distance) as an int. Small ints are shared objects, where
# tuples would be millions of allocations the garbage collector scans.
_Flags: TypeAlias = int


class RouteTable:
    """Our distances to sources and each neighbour's, with what we owe each neighbour.

    Peers and sources are plain bytes: a peer is its identity, a source the
    8-byte prefix of one (`source_key`).
    """

    def __init__(
        self,
        own: bytes | None,
        *,
        max_hops: int = DEFAULT_MAX_HOPS,
        max_sources: int = DEFAULT_MAX_SOURCES,
    ) -> None:
        if not 1 <= max_hops < UNREACHABLE:
            raise ValueError("max_hops is 1..126")
        self._own = source_key(own) if own is not None else None
        self._max_hops = max_hops
        self._max_sources = max_sources
        # What each neighbour told us: source -> flags (distance | parent bit:
        # it routes through us).
        self._theirs: dict[bytes, dict[bytes, _Flags]] = {}
        self._best: dict[bytes, _Best] = {}
        if self._own is not None:
            self._best[self._own] = (0, None)
        # What we last told each neighbour, and the sources to look at again for it.
        self._sent: dict[bytes, dict[bytes, _Flags]] = {}
        # Insertion-ordered (dicts, not sets): what we tell a neighbour, and in
        # which order, must not depend on the process's hash seed.
        self._dirty: dict[bytes, dict[bytes, None]] = {}

    def __len__(self) -> int:
        """How many sources we have a route to (ourselves included)."""
        return len(self._best)

    def distance(self, source: bytes) -> int | None:
        """Our hop distance to `source` (an 8-byte key), or None without a route."""
        best = self._best.get(source)
        return None if best is None else best[0]

    def parent(self, source: bytes) -> bytes | None:
        """The neighbour we route through towards `source` (None: no route, or us)."""
        best = self._best.get(source)
        return None if best is None else best[1]

    def role(self, peer: bytes, source: bytes) -> Role:
        """`peer`'s place in `source`'s tree, as far as it told us."""
        theirs = self._theirs.get(peer)
        entry = None if theirs is None else theirs.get(source)
        if entry is None:
            return Role.UNKNOWN
        return Role.CHILD if entry & _PARENT else Role.OTHER

    def children(self, peer: bytes, sources: Sequence[bytes], *, unknown: bool) -> list[bool]:
        """Whether `peer` named us its parent, for each of `sources` (`unknown`
        where it told us nothing): `role` for a whole batch, on the forwarding path."""
        theirs = self._theirs.get(peer, {})
        untold = _PARENT if unknown else 0
        return [theirs.get(source, untold) > UNREACHABLE for source in sources]

    def add_peer(self, peer: bytes) -> None:
        """A neighbour that speaks routes: it is owed our whole table."""
        if peer in self._theirs:
            return
        self._theirs[peer] = {}
        self._sent[peer] = {}
        self._dirty[peer] = dict.fromkeys(self._best)

    def remove_peer(self, peer: bytes) -> None:
        """A neighbour left: the routes through it go to the next best, or away."""
        theirs = self._theirs.pop(peer, None)
        self._sent.pop(peer, None)
        self._dirty.pop(peer, None)
        if theirs is None:
            return
        for source in [source for source, best in self._best.items() if best[1] == peer]:
            self._recompute(source)

    def receive(self, peer: bytes, routes: Sequence[Route]) -> None:
        """Take a neighbour's routes (after `add_peer`).

        Most entries change nothing, or offer a route no better than ours, and
        are decided here without a scan of the other neighbours (`_recompute`);
        this loop runs for every entry of every table a community exchanges.

        Raises:
            DecodeError: `OUT_OF_RANGE` when it claims distance 0 to a source
                other than itself (only a member is 0 hops from itself).
        """
        theirs = self._theirs.get(peer)
        if theirs is None:
            return
        own_key = source_key(peer)
        for source, distance, _ in routes:
            if distance == 0 and source != own_key:
                raise DecodeError(Reason.OUT_OF_RANGE, "distance 0 to another member")
        self._take(peer, self._record(theirs, routes))

    def _record(self, theirs: dict[bytes, _Flags], routes: Sequence[Route]) -> list[Route]:
        """Keep what a neighbour told us; return the entries that changed."""
        max_hops, max_sources = self._max_hops, self._max_sources
        changed = []
        for route in routes:
            source, distance, parent = route
            known = theirs.get(source)
            if distance >= max_hops:  # withdrawn (UNREACHABLE), or too far to count
                if known is None:
                    continue
                del theirs[source]
            elif known == (flags := _PARENT | distance if parent else distance):
                continue  # nothing new
            elif known is None and len(theirs) >= max_sources:
                continue  # bounded: a neighbour cannot grow our memory without end
            else:
                theirs[source] = flags
            changed.append(route)
        return changed

    def _take(self, peer: bytes, changed: list[Route]) -> None:
        """Our routes after `peer`'s `changed` entries: most are decided without a scan."""
        table, own, max_hops, max_sources = self._best, self._own, self._max_hops, self._max_sources
        dirty_maps = list(self._dirty.values())
        for source, distance, parent in changed:
            if source == own:
                continue
            best = table.get(source)
            if not parent and distance + 1 < max_hops:
                offer = distance + 1
                if best is None or offer < best[0]:  # nearer than our route: take it
                    if best is not None or len(table) < max_sources:
                        table[source] = (offer, peer)
                        for dirty in dirty_maps:
                            dirty[source] = None
                    continue
                if best[1] != peer or offer == best[0]:
                    continue  # no nearer, and a tie keeps the parent we have
            elif best is None or best[1] != peer:
                continue  # a way there we did not use went away
            self._recompute(source)  # our parent's way got longer, or went

    def updates_for(self, peer: bytes) -> list[Route]:
        """What `peer` must hear from us now: the routes that changed since we last told it."""
        dirty = self._dirty.get(peer)
        if not dirty:
            return []
        sent, table = self._sent[peer], self._best
        updates: list[Route] = []
        for source in dirty:
            best = table.get(source)
            if best is None:
                if sent.pop(source, None) is not None:
                    updates.append((source, UNREACHABLE, False))
                continue
            distance, parent = best[0], best[1] == peer
            now = _PARENT | distance if parent else distance
            if sent.get(source) != now:
                sent[source] = now
                updates.append((source, distance, parent))
        dirty.clear()
        return updates

    def _recompute(self, source: bytes) -> None:
        """Choose our next hop to `source` again; mark it dirty for every peer if it moved."""
        if source == self._own:
            return
        old = self._best.get(source)
        candidates = [
            (flags + 1, peer)
            for peer, theirs in self._theirs.items()
            # With the parent bit ("it routes through us": not a way there) the
            # flags are above any distance, so one comparison tests both.
            if (flags := theirs.get(source)) is not None and flags + 1 < self._max_hops
        ]
        chosen: _Best | None = None
        if candidates:
            nearest = min(distance for distance, _ in candidates)
            at_best = [peer for distance, peer in candidates if distance == nearest]
            # A tie keeps the parent we have (fewer changes), else the lowest identity.
            current = None if old is None else old[1]
            chosen = (nearest, current if current in at_best and current else min(at_best))
        if chosen is None:
            if old is None:
                return
            del self._best[source]
        else:
            if old == chosen:
                return
            if old is None and len(self._best) >= self._max_sources:
                return
            self._best[source] = chosen
        for dirty in self._dirty.values():
            dirty[source] = None
