"""Replication between peers: reconcile on connect, pull what is missing, push what is new.

On every connection each side says hello (its capabilities choose the forms
the other sends: SPEC §9.2); the dialling side starts a set reconciliation
(SPEC §13) over the (issued_at, id) pairs of its store, and again every
`resync_interval_s` (anti-entropy: it repairs whatever pushes missed). What a
side learns the peer lacks it sends as records (`deliver`); what it lacks and
was not sent it fetches (`want`). A session longer than `max_sync_rounds`
closes the connection. A new attestation travels along a push tree (Plumtree,
SPEC §9.3): pushed on eager links, announced by id prefix on lazy ones, with
`prune` and `graft` keeping the eager links a tree; what to push, announce,
graft and prune is decided by `protocol.pushtree`, sans I/O, and sent from
here, which keeps the timers (its deadlines). Where neighbours exchange
routes (SPEC §9.4), each issuer's attestations take that issuer's own
shortest-path tree instead: as few hops as a flood, one copy per member.

All peer bytes go through `ingest` (decode, verify, freshness, relay policy)
before they touch the store; the records of a session we dialled (a join) are
checked in a worker thread, or a worker process (node/signatures), while the
store writes (`verify_ahead`). A peer
that breaks the protocol gets an `error` message and is disconnected (or
banned: node/policy); its session never takes the node down.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import trio

from node.errors import StoreError
from node.gossip.invites import INVITES_CAPABILITY, InviteDesk
from node.gossip.policy import PEER_POLICY, Action, BanList
from node.gossip.signatures import SignatureChecker, check_in_thread
from node.gossip.sketch_fast import NumpySketchBuilder
from node.net.transport import PeerStream
from node.store import AttestationStore, IngestReport, ItemReport, Outcome, ingest
from node.store.pipeline import Admission
from protocol.attestation import (
    ID_PREFIX_BYTES,
    Attestation,
    AttestationId,
    attestation_id,
    envelope_issuer,
    is_naming_envelope,
)
from protocol.errors import Reason, RemoteProtocolError
from protocol.events import NeedData
from protocol.greeting import HELLO_TIMEOUT_S, Greeting, error_message
from protocol.identity import IdentityId, short_identity_text
from protocol.pushtree import Arrivals, PushTree, TreeLink, announcements
from protocol.routes import RouteTable, decode_routes, encode_routes, source_key
from protocol.sync import Reconciler
from protocol.wire import (
    MAX_PEER_ADDRESSES,
    MAX_PUSH_ENVELOPES,
    MAX_WANT_IDS,
    Deliver,
    ErrorMessage,
    Graft,
    Graft8,
    Hello,
    IHave,
    IHave8,
    Message,
    MessageReader,
    Peers,
    Prune,
    Push,
    Redeem,
    Routes,
    Sync,
    Want,
    encode_message,
)

__all__ = ["GossipNode", "InlineStore", "PeerExchange", "StoreAccess", "ThreadedStore"]

T = TypeVar("T")
S = TypeVar("S", bound=AttestationStore)
AGENT = "trustnode/0.1"
# What we say in hello (SPEC §9.2): `graft`, `deliver` and `ihave8` = we
# understand wire types 9, 10, and 11 and 12; `sync-compact` = sync modes 4-6
# (§13), `sync-sketch` = modes 7-8 (§13, sketch forms); `routes` = wire type 13 and source
# trees (§9.4). A peer that does not say them gets `want` for grafts, `push`
# for answers, full ids in announcements, full (or compact) forms in sync
# sessions and the shared push tree.
# `names` = we take profiles and named trusts: to a peer that does not say it
# we send none (it would refuse them as fatal, SPEC §9.2).
CAPABILITIES = (
    "push",
    "sync-v1",
    "graft",
    "deliver",
    "ihave8",
    "sync-compact",
    "sync-sketch",
    "routes",
    "names",
)
log = logging.getLogger("trustnode.gossip")
_MAX_OUTBOX_BYTES = 32 * 1024 * 1024
_MAX_PARTS_PER_WRITE = 64
_FINISH_WRITE_S = 1.0  # a write in flight when a session ends (see _Peer.write_loop)
_MAX_SEEN = 200_000
_INGEST_PART = 200  # envelopes per store call when a peer pushes many
# Records of a session we started are checked ahead and stored in batches of up
# to this many (see GossipNode._intake): each store call rewrites the pages its
# random ids touch, so larger batches cost less per record; one holds the store
# for about 0.2 s.
_INTAKE_BATCH = 2000
# Route entries a peer may make us process (SPEC §9.4): a whole table of the
# largest size at once, then a steady trickle; beyond it we stop reading from it.
_ROUTE_ENTRIES_PER_S = 20_000
_ROUTE_ENTRIES_BURST = 2 * 65_536
_SEVERITY_ORDER = {Action.DROP: 0, Action.CLOSE: 1, Action.BAN: 2}


class StoreAccess(Protocol):
    """How the async layer reaches the synchronous store."""

    async def run(self, operation: Callable[[AttestationStore], T]) -> T:
        """Run `operation(store)` and return its result."""
        ...


class ThreadedStore(Generic[S]):
    """Runs store operations in a worker thread, one at a time (the daemon's choice)."""

    def __init__(self, store: S) -> None:
        self._store = store
        self._lock = trio.Lock()

    async def run(self, operation: Callable[[S], T]) -> T:
        """Run `operation(store)` in a thread, serialised."""
        async with self._lock:
            return await trio.to_thread.run_sync(operation, self._store)


class InlineStore(Generic[S]):
    """Runs store operations inline: for simulations on a MockClock with in-memory stores.

    A worker thread would let the autojump clock race ahead of the store, so
    simulations trade a brief block of the event loop for determinism.
    """

    def __init__(self, store: S) -> None:
        self._store = store

    async def run(self, operation: Callable[[S], T]) -> T:
        """Run `operation(store)` now, then checkpoint."""
        result = operation(self._store)
        await trio.lowlevel.checkpoint()
        return result


class PeerExchange(Protocol):
    """Where addresses from and for peer exchange (wire `peers`) come and go."""

    def sample(self) -> tuple[str, ...]:
        """Addresses to tell a peer about (our own first, if we listen)."""
        ...

    def learn(self, addresses: tuple[str, ...], *, source: IdentityId) -> None:
        """Addresses a peer told us about: hearsay, to try later."""
        ...


class OutboxFullError(trio.BrokenResourceError):
    """A peer stopped reading while we owed it more than the outbox bound."""


@dataclass
class _Peer:
    """One connection. Sending never blocks the reader: messages go to an outbox
    that a writer task drains, so two peers answering each other's requests at
    once cannot deadlock on full windows. The outbox is bounded in bytes."""

    identity: IdentityId
    stream: PeerStream
    outbox_bytes: int = 0
    reconciler: Reconciler | None = None
    # Its place in the push tree (protocol.pushtree), and what forwarding owes it.
    link: TreeLink = field(default_factory=TreeLink)
    dialled: bool = False  # we opened this connection
    nursery: trio.Nursery | None = None
    flush_scheduled: bool = False  # a task sleeps until `link`'s pending part goes
    grafts: bool = False  # it said `graft` in its hello (else a graft is a `want`)
    delivers: bool = False  # it said `deliver` (else answers travel as `push`)
    short_ids: bool = False  # it said `ihave8`: announce to it by 8-byte prefixes
    compact_sync: bool = False  # it said `sync-compact`: prefix lists, short fingerprints
    sketch_sync: bool = (
        False  # and `sync-sketch`: counted ladders, sketches (SPEC §13, sketch forms)
    )
    routes: bool = False  # we both said `routes`: source trees (SPEC §9.4)
    names: bool = False  # it said `names`: it takes naming records (SPEC §9.2)
    invites: bool = False  # it said `invites`: it answers `redeem` (SPEC §12.2)
    routes_flush_scheduled: bool = False
    routes_sent_at: float = float("-inf")  # trio time we last sent it our route changes
    route_budget: _ReceiveBudget | None = None  # entries, not bytes (see _ROUTE_ENTRIES_PER_S)
    last_session_started: float = float("-inf")  # trio time the peer last opened a sync
    outbox: trio.MemorySendChannel[bytes] = field(init=False)
    inbox: trio.MemoryReceiveChannel[bytes] = field(init=False)
    greeted: trio.Event = field(default_factory=trio.Event)  # its hello arrived
    greeting: Greeting = field(default_factory=Greeting)  # hello first, once (SPEC §9.2)
    writing: trio.CancelScope | None = None  # the write in flight (see write_loop)
    finish_writes_by: float = math.inf  # when the session ends: see finish_writing()
    intake: trio.MemorySendChannel[Sequence[bytes]] | None = None  # see GossipNode._intake
    checks_ahead: bool = True  # off once its deliveries are mostly over quota (see _intake)
    graft_timer: bool = False  # a task works through `link.graft_due`

    def __post_init__(self) -> None:
        self.outbox, self.inbox = trio.open_memory_channel[bytes](float("inf"))

    @property
    def eager(self) -> bool:
        """We push payloads to this peer (else announce ids: the push tree)."""
        return self.link.eager

    @eager.setter
    def eager(self, eager: bool) -> None:
        self.link.eager = eager

    async def send(self, message: Message) -> None:
        if isinstance(message, Push | Deliver) and not self.names:
            # A peer older than profiles would close on them (SPEC §9.2): leave
            # them out, here where every record we send passes.
            kept = tuple(e for e in message.envelopes if not is_naming_envelope(e))
            if not kept:
                await trio.lowlevel.checkpoint()
                return
            if len(kept) < len(message.envelopes):
                message = type(message)(envelopes=kept)
        data = encode_message(message)
        if self.outbox_bytes + len(data) > _MAX_OUTBOX_BYTES:
            raise OutboxFullError(f"peer owes us reading {self.outbox_bytes} bytes")
        self.outbox_bytes += len(data)
        self.outbox.send_nowait(data)
        await trio.lowlevel.checkpoint()

    async def write_loop(self) -> None:
        async for first in self.inbox:
            # Whatever else is queued goes in the same write (one record, one send).
            parts = [first]
            with contextlib.suppress(trio.WouldBlock):
                while len(parts) < _MAX_PARTS_PER_WRITE:
                    parts.append(self.inbox.receive_nowait())
            data = b"".join(parts) if len(parts) > 1 else first
            # A write cut off halfway breaks the channel (node/transport), and then
            # the `error` that ends a session could not follow it: when the session
            # ends, the write in flight gets until `finish_writes_by` to complete.
            with trio.CancelScope(shield=True, deadline=self.finish_writes_by) as writing:
                self.writing = writing
                await self.stream.send_all(data)
            self.writing = None
            self.outbox_bytes -= len(data)

    def finish_writing(self) -> None:
        """The session ends: the write in flight may complete, within a bound."""
        self.finish_writes_by = trio.current_time() + _FINISH_WRITE_S
        if self.writing is not None:
            self.writing.deadline = self.finish_writes_by


class _ReceiveBudget:
    """A token bucket on the bytes read from one peer.

    When a peer sends faster than `rate` bytes/s (after a `burst`), we stop
    reading from it for a while: TCP (or the simulated window) pushes back on
    the sender, our CPU per peer stays bounded and nothing queues up here.
    """

    def __init__(self, *, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = trio.current_time()

    async def take(self, count: int) -> None:
        now = trio.current_time()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= count
        if self._tokens < 0:
            await trio.sleep(-self._tokens / self._rate)


def _complete(report: IngestReport, envelopes: Sequence[bytes]) -> IngestReport:
    """`report` with an item for every envelope: those it skipped as recent copies are
    duplicates."""
    if len(report.items) == len(envelopes):
        return report
    items = {item.index: item for item in report.items}
    return IngestReport(items=tuple(
        items.get(n) or ItemReport(index=n, outcome=Outcome.DUPLICATE, id=attestation_id(e))
        for n, e in enumerate(envelopes)
    ))  # fmt: skip


def _all_items(store: AttestationStore) -> list[tuple[int, bytes]]:
    items: list[tuple[int, bytes]] = []
    after: tuple[int, bytes] | None = None
    while batch := store.ids_in_order(after=after, limit=10_000):
        items += [(ts, bytes(i)) for ts, i in batch]
        after = items[-1]
    return items


def _held(report: IngestReport) -> list[tuple[bytes, bool]]:
    """What the store holds now of a batch (see `PushTree.remember`): (id, held before)."""
    return [
        (bytes(item.id), item.outcome is Outcome.DUPLICATE)
        for item in report.items
        if item.id is not None and item.outcome is not Outcome.REJECTED
    ]


def _lacking(ids: Sequence[bytes]) -> Callable[[AttestationStore], list[bytes]]:
    def check(store: AttestationStore) -> list[bytes]:
        held = store.existing_ids([AttestationId(i) for i in ids])
        return [i for i in ids if i not in held]

    return check


def _envelopes(ids: Sequence[bytes]) -> Callable[[AttestationStore], list[bytes]]:
    def fetch(store: AttestationStore) -> list[bytes]:
        return store.envelopes(ids)

    return fetch


_Checked = tuple[Sequence[bytes], dict[bytes, Attestation]]


async def _check_each(
    deliveries: trio.MemoryReceiveChannel[Sequence[bytes]],
    checked: trio.MemorySendChannel[_Checked],
    wanted: Callable[[], bool],
    check: Callable[[Sequence[bytes]], dict[bytes, Attestation]],
) -> None:
    """Pass each delivery on with its attestations whose signatures verified
    (none checked once `wanted()` says no: `ingest` then checks what it keeps)."""
    async with deliveries, checked:
        async for envelopes in deliveries:
            found = await trio.to_thread.run_sync(check, envelopes) if wanted() else {}
            await checked.send((envelopes, found))


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception of a (possibly nested) group."""
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _judge(reasons: list[Reason]) -> None:
    """Raise for the worst reason that the peer answers for (node/policy).

    The valid part of its message was kept.
    """
    reason = max(reasons, key=lambda r: _SEVERITY_ORDER[PEER_POLICY[r]], default=None)
    if reason is not None and PEER_POLICY[reason] is not Action.DROP:
        raise RemoteProtocolError(reason, "peer pushed a refused attestation")


class GossipNode:
    """Keeps one store in step with every connected peer."""

    def __init__(
        self,
        *,
        store: StoreAccess,
        wall_clock_ms: Callable[[], int],
        max_skew_ms: int = 10 * 60 * 1000,
        admit: Admission | None = None,
        resync_interval_s: float = 60.0,
        max_sync_rounds: int = 64,
        graft_timeout_s: float = 1.0,
        max_receive_bytes_per_s: float = 4 * 1024 * 1024,
        receive_burst_bytes: float = 2 * 1024 * 1024,
        identity: IdentityId | None = None,
        coalesce_s: float = 0.01,
        min_session_interval_s: float = 1.0,
        announce_delay_s: float = 0.1,
        verified_cache: MutableMapping[bytes, Attestation] | None = None,
        verify_ahead: bool = False,
        signature_checker: SignatureChecker | None = None,
        route_delay_s: float = 2.0,
    ) -> None:
        self._verified_cache = verified_cache  # simulations only: see node.store.ingest
        # Check the signatures of a dialled session's records in a worker thread,
        # ahead of the store (see _intake). Threads: not on a MockClock. With a
        # `signature_checker`, that thread hands the checks to its worker process.
        self._verify_ahead = verify_ahead and verified_cache is None
        self._signature_checker = signature_checker
        self.identity = identity  # ours: breaks ties between duplicate connections
        # Distances to issuers, for their source trees (SPEC §9.4); changes are
        # told to each neighbour at most once per `route_delay_s`.
        self.routes = RouteTable(identity)
        self._route_delay_s = route_delay_s
        self.route_entries_received = 0
        # Eager and lazy links, announcements, graft deadlines, prunes (SPEC §9.3):
        # decided there, sans I/O; this class sends what it decides and keeps its time.
        self.tree = PushTree(
            graft_timeout_s=graft_timeout_s,
            coalesce_s=coalesce_s,
            announce_delay_s=announce_delay_s,
            max_seen=_MAX_SEEN,
        )
        self._min_session_interval_s = min_session_interval_s
        self._receive_rate = max_receive_bytes_per_s
        self._receive_burst = receive_burst_bytes
        self.hello_timeout_s = HELLO_TIMEOUT_S  # SPEC §9.2; tests may shorten it
        self._resync_interval_s = resync_interval_s
        self._max_sync_rounds = max_sync_rounds
        self._store = store
        self._admit = admit
        self._wall_clock_ms = wall_clock_ms
        self._max_skew_ms = max_skew_ms
        self._peers: dict[IdentityId, _Peer] = {}
        # What our hello names (SPEC §9.2); tests set fewer to play an older peer.
        self.capabilities: tuple[str, ...] = CAPABILITIES
        # Single-use invites (SPEC §12): set with `INVITES_CAPABILITY` by the service.
        self.invites: InviteDesk | None = None
        self.bans = BanList(clock=trio.current_time)
        self.protocol_errors = 0
        self._closing = False  # see close()
        self.store_errors = 0  # sessions ended because our store refused a write
        self.grafts_sent = 0  # links we asked back into the push tree
        self.stored_from_peers = 0
        self.payload_copies_received = 0
        self.payload_bytes_received = 0
        self.announcements_received = 0
        self.announcement_bytes_received = 0  # the ids or prefixes in them
        self.sync_bytes_sent = 0  # reconciliation payloads (SPEC §13), not the records
        self._progress = trio.Event()
        self._stored = trio.Event()
        # Called with the ids of each stored batch (simulations record arrival times).
        self.stored_hook: Callable[[list[AttestationId]], None] | None = None
        self.last_stored_at: float | None = None  # trio time of the last stored batch
        self.last_sync_at: dict[IdentityId, float] = {}  # trio time each peer's last session ended
        self.exchange: PeerExchange | None = None  # set by the peer manager

    async def wait_progress(self) -> None:
        """Wait until the next batch from a peer has been stored (see `stored_from_peers`)."""
        await self._progress.wait()

    @property
    def peers(self) -> list[IdentityId]:
        """Identities of the connected peers."""
        return list(self._peers)

    def describe_peers(self) -> list[tuple[IdentityId, bool, bool]]:
        """(identity, we dialled it, we push payloads to it) for each connection."""
        return [(p.identity, p.dialled, p.eager) for p in self._peers.values()]

    async def publish(
        self, attestations: Sequence[Attestation], *, now_ms: int | None = None
    ) -> IngestReport:
        """Store our own attestations and push the new ones to every peer.

        When this returns, what the report calls NEW or SUPERSEDED is committed.
        `now_ms` overrides the clock for the freshness check: our own statement
        may be dated after a clock that jumped back (see `Node.issue`).
        """
        report = await self._ingest([a.data for a in attestations], source=None, now_ms=now_ms)
        return _complete(report, [a.data for a in attestations])

    async def ingest_local(self, envelopes: Sequence[bytes]) -> IngestReport:
        """Verify and store envelopes from a local source (an import file, an app),
        skipping the relay quotas, and push the new ones to every peer. The report
        has one item per envelope."""
        report = await self._ingest(envelopes, source=None)
        return _complete(report, envelopes)

    @property
    def stored_signal(self) -> trio.Event:
        """An event set when the next batch (from a peer or local) is stored.

        Take it *before* reading the store, then wait on it: nothing stored in
        between can be missed.
        """
        return self._stored

    async def _ingest(
        self,
        envelopes: Sequence[bytes],
        *,
        source: IdentityId | None,
        now_ms: int | None = None,
        forwarded: bool = False,
        checked: MutableMapping[bytes, Attestation] | None = None,
    ) -> IngestReport:
        """Store what verifies and forward what is new.

        Only copies that `source` `forwarded` in the push tree count towards
        pruning that link: answers to our requests and sync records may well
        be copies (they were in flight when we asked) without the link being
        redundant in the tree. `checked`: envelopes whose signatures this node
        has just checked itself (see _intake).
        """
        cache = self._verified_cache if checked is None else checked
        now_ms = self._wall_clock_ms() if now_ms is None else now_ms
        # Our own attestations always stay; what peers bring passes the relay policy.
        admit = self._admit if source is not None else None
        # Copies of what we just stored are the common case in gossip: answer them
        # from memory, and let the store see only the rest.
        arrivals = self.tree.arrivals([attestation_id(e) for e in envelopes])
        unseen = arrivals.unseen
        part = [envelopes[n] for n in unseen]
        stored = await self._store.run(
            lambda store: ingest(
                store, part, now_ms=now_ms, max_skew_ms=self._max_skew_ms, admit=admit,
                verified_cache=cache,
            )
        ) if part else IngestReport(items=())  # fmt: skip
        # Indices back into `envelopes`; the skipped copies have no item here.
        report = stored if len(part) == len(envelopes) else IngestReport(items=tuple(
            ItemReport(index=unseen[i.index], outcome=i.outcome, id=i.id, reason=i.reason)
            for i in stored.items
        ))  # fmt: skip
        self.tree.remember(_held(report), through_tree=forwarded or source is None)
        fresh = [envelopes[i.index] for i in report.items if i.outcome is Outcome.NEW]
        if report.stored_ids:
            if self.stored_hook is not None:
                self.stored_hook(report.stored_ids)
            self.last_stored_at = trio.current_time()
            self._stored.set()
            self._stored = trio.Event()
        if source is not None:
            self.stored_from_peers += len(report.stored_ids)
            self.payload_copies_received += len(envelopes)
            self.payload_bytes_received += sum(len(e) for e in envelopes)
            self._progress.set()
            self._progress = trio.Event()
            if forwarded:
                duplicates = report.counts[Outcome.DUPLICATE]
                await self._maybe_prune(source, arrivals, duplicates=duplicates)
        if fresh:
            ids = [bytes(i.id) for i in report.items if i.outcome is Outcome.NEW and i.id]
            self._forward(fresh, ids, source=source)
        return report

    def _forward(self, fresh: list[bytes], ids: list[bytes], *, source: IdentityId | None) -> None:
        """Owe new envelopes to the eager peers and their ids to the lazy ones.

        Every lazy peer hears of every new id, as in Plumtree: a member cut off
        from the tree during a burst grafts each id it hears of, and only
        those. Announcing each batch to 2 random lazy peers instead (tried)
        left some ids unheard of at cut-off members among 1000 simulated ones,
        and they waited for anti-entropy: 28 s for a burst that took 2 s.
        """
        sources: list[bytes] | None = None
        for peer in self._peers.values():
            if peer.identity == source:
                continue
            children: list[bool] | None = None
            if peer.routes:
                # Its place in each issuer's tree, where it told us; else the shared tree.
                if sources is None:
                    sources = [source_key(envelope_issuer(e)) for e in fresh]
                children = self.routes.children(peer.identity, sources, unknown=peer.eager)
            peer.link.owe(fresh, ids, children=children)
            if not peer.flush_scheduled and peer.nursery is not None:
                peer.flush_scheduled = True
                # A session that is ending has closed its nursery: it is owed nothing.
                with contextlib.suppress(RuntimeError):
                    peer.nursery.start_soon(self._flush, peer)

    async def _flush(self, peer: _Peer) -> None:
        """Forward what accumulated for `peer` while `PushTree.flush_delay` waited:
        a burst of attestations travels in a few large pushes and announcements,
        not one message per attestation per link (Plumtree batches its lazy
        pushes too)."""
        await trio.sleep(self.tree.flush_delay(peer.link, now=trio.current_time()))
        peer.flush_scheduled = False
        pushes, announced = self.tree.flush(peer.link, now=trio.current_time())
        if pushes:
            await self._push(peer, pushes)
        if announced:
            await self._announce(peer, announced)

    async def _maybe_prune(
        self, source: IdentityId, arrivals: Arrivals, *, duplicates: int
    ) -> None:
        """Plumtree's PRUNE, where the tree says a push brought mostly copies."""
        peer = self._peers.get(source)
        if peer is None:
            return
        if (prune := self.tree.judge_push(peer.link, arrivals, duplicates=duplicates)) is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await peer.send(prune)

    async def _announce(self, peer: _Peer, ids: Sequence[bytes]) -> None:
        for message in announcements(ids, short_ids=peer.short_ids):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await peer.send(message)

    async def _on_ihave(self, peer: _Peer, ids: tuple[bytes, ...]) -> None:
        self.announcements_received += len(ids)
        self.announcement_bytes_received += len(ids) * len(ids[0])
        unseen = self.tree.unseen_ids(ids)
        lacking = await self._store.run(_lacking(unseen)) if unseen else []
        if lacking:
            self._graft_later(peer, lacking, [])

    async def _on_ihave8(self, peer: _Peer, prefixes: list[bytes]) -> None:
        """Announced by prefix: one we saw lately is that attestation; others we
        lack (see `PushTree.unknown_prefixes`)."""
        self.announcements_received += len(prefixes)
        self.announcement_bytes_received += len(prefixes) * ID_PREFIX_BYTES
        unknown = self.tree.unknown_prefixes(prefixes)
        if unknown:
            self._graft_later(peer, [], unknown)

    def _graft_later(self, peer: _Peer, ids: list[bytes], prefixes: list[bytes]) -> None:
        """Look again at what `peer` announced one graft timeout from now (`_graft_due`).

        One timer task per peer works through the announcements in the order
        they came (the timeout is the same for all, so that is also the order
        they fall due), taking together those due at one instant: a task and
        a timer per announcement was the most numerous thing a busy node ran.
        """
        self.tree.expect(peer.link, ids, prefixes, now=trio.current_time())
        if not peer.graft_timer and peer.nursery is not None:
            peer.graft_timer = True
            with contextlib.suppress(RuntimeError):  # that session is ending
                peer.nursery.start_soon(self._graft_timer, peer)

    async def _graft_timer(self, peer: _Peer) -> None:
        try:
            while (deadline := self.tree.graft_deadline(peer.link)) is not None:
                await trio.sleep_until(deadline)
                ids, prefixes = self.tree.due(peer.link, now=trio.current_time())
                await self._graft_due(peer, ids, prefixes)
        finally:
            peer.graft_timer = False

    async def _graft_due(self, peer: _Peer, ids: list[bytes], prefixes: list[bytes]) -> None:
        """If an announced attestation has not arrived through the tree by now,
        GRAFT (`PushTree.graft`): the store tells which of those not seen lately
        we lack."""
        check = self.tree.graft_check(ids, prefixes, now=trio.current_time())
        unheld = check.unheld
        lacking = await self._store.run(_lacking(unheld)) if unheld else []
        grafts = self.tree.graft(peer.link, check, lacking, speaks_graft=peer.grafts)
        if not grafts:
            return
        self.grafts_sent += 1
        for message in grafts:
            await peer.send(message)

    async def _push(self, peer: _Peer, envelopes: Sequence[bytes], *, answer: bool = False) -> None:
        """Send envelopes: forwarded in the push tree, or as an `answer` to a request."""
        kind = Deliver if answer and peer.delivers else Push
        for start in range(0, len(envelopes), MAX_PUSH_ENVELOPES):
            chunk = tuple(envelopes[start : start + MAX_PUSH_ENVELOPES])
            try:
                await peer.send(kind(envelopes=chunk))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # that session is ending; it cleans up after itself

    def _keeps_new_connection(self, peer: IdentityId, *, initiator: bool) -> bool:
        """Two connections to one peer (both dialled at once): keep the one that the
        smaller identity dialled, a rule both sides apply alike. Without knowing
        our own identity, keep the older one."""
        if self.identity is None:
            return False
        dialler = self.identity if initiator else peer
        return dialler == min(self.identity, peer)

    def _admit_session(self, stream: PeerStream, *, initiator: bool, lazy: bool) -> _Peer | None:
        """The new session's peer, replacing an older connection to it; None to refuse."""
        existing = self._peers.get(stream.peer)
        if self.bans.is_banned(stream.peer) or (
            existing is not None
            and not self._keeps_new_connection(stream.peer, initiator=initiator)
        ):
            return None
        if existing is not None and existing.nursery is not None:
            existing.nursery.cancel_scope.cancel()  # it ends; this one replaces it
        # A replacement carries on the link's place in the push tree (cutting a
        # tree link, or closing a cycle, would cost grafts or duplicates).
        eager = existing.eager if existing is not None else not lazy
        link = TreeLink(eager=eager)
        peer = _Peer(identity=stream.peer, stream=stream, dialled=initiator, link=link)
        self._peers[peer.identity] = peer
        return peer

    async def run_session(self, stream: PeerStream, *, initiator: bool, lazy: bool = False) -> bool:
        """Serve one connection until it ends (True), or refuse it at once (False):
        a banned peer, or a second connection to a connected peer.

        `lazy` opens the link outside the push tree: both sides only announce
        over it (we send PRUNE at once) until a GRAFT makes it eager. The peer
        manager opens its exploring links so: an eager new link would close a
        cycle in the tree, and every attestation would then cost duplicates
        until prunes settle it again.
        """
        replacing = stream.peer in self._peers
        peer = self._admit_session(stream, initiator=initiator, lazy=lazy)
        if peer is None:
            # A duplicate of a live connection (both sides dialled): nothing changed.
            log.debug("peer %s: a second connection refused", short_identity_text(stream.peer))
            await stream.aclose_gracefully()  # a clean end (SPEC §11), within its bound
            return False
        lazy = not peer.eager
        # One line per connection event; a replaced connection's end says nothing more.
        direction = "outbound" if initiator else "inbound"
        event = "reconnected" if replacing else "connected"
        log.info("peer %s %s (%s)", short_identity_text(peer.identity), event, direction)
        ended = "closed"
        try:
            async with trio.open_nursery() as nursery:
                peer.nursery = nursery
                nursery.start_soon(peer.write_loop)
                nursery.start_soon(self._expect_hello, peer)
                await peer.send(Hello(capabilities=self.capabilities, agent=AGENT))
                if lazy:
                    await peer.send(Prune())
                if initiator:
                    await self._share_peers(peer)
                if initiator:
                    # Only the dialling side starts sessions, so a connection never
                    # carries two at once; it repeats them to repair missed pushes.
                    nursery.start_soon(self._anti_entropy, peer)
                try:
                    await self._read_loop(peer)
                finally:
                    peer.finish_writing()  # however the session ends
                nursery.cancel_scope.cancel()
        except* RemoteProtocolError as group:
            error = _first_leaf(group)  # nested when it came from the intake's nursery
            assert isinstance(error, RemoteProtocolError)
            self.protocol_errors += 1
            ended = f"it broke the protocol ({error.reason.value})"
            if PEER_POLICY.get(error.reason, Action.CLOSE) is Action.BAN:
                self.bans.ban(peer.identity)
            await self._refuse(peer, error)
        except* StoreError as group:
            # Our disk is full or our store read-only: not the peer's fault. The
            # session ends (what it brought is not stored) and anti-entropy
            # brings it again once the store takes writes; the node keeps serving.
            self.store_errors += 1
            ended = f"our store refused a write ({_first_leaf(group)})"
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            ended = "the connection broke"  # the peer went away, or stopped reading
        finally:
            await self._end_session(peer, why=ended)
        return True

    def close(self) -> None:
        """The node is going down: the sessions that end from now on skip what
        only a running node needs (finding new routes around each lost link:
        about members x links steps in all, for nothing)."""
        self._closing = True

    async def _end_session(self, peer: _Peer, *, why: str) -> None:
        current = self._peers.get(peer.identity) is peer  # not replaced by a newer connection
        if current:
            del self._peers[peer.identity]
            if peer.routes and not self._closing:
                self.routes.remove_peer(peer.identity)
                self._routes_changed()
        # The close record, also when the node is shutting down or the session was
        # cancelled (SPEC §11): without it every end reads as a truncation. Bounded.
        with trio.CancelScope(shield=True, deadline=trio.current_time() + 2 * _FINISH_WRITE_S):
            await peer.stream.aclose_gracefully()
        await trio.aclose_forcefully(peer.stream)  # if that ran out of time
        if current:
            level = logging.WARNING if why.startswith("our store") else logging.INFO
            log.log(level, "peer %s disconnected: %s", short_identity_text(peer.identity), why)

    def _routes_changed(self) -> None:
        """Tell every neighbour what changed in our routes: at once on a quiet
        link, else together with what follows, at most one message per
        `route_delay_s` per link.

        Each link change in the community moves some routes at many members
        (distance-vector waves), and a member's links change every few minutes
        (random replacement, churn): without the interval every step of every
        wave would be a message of its own on every link.
        """
        now = trio.current_time()
        for peer in self._peers.values():
            if peer.routes and not peer.routes_flush_scheduled and peer.nursery is not None:
                peer.routes_flush_scheduled = True
                wait = max(0.0, peer.routes_sent_at + self._route_delay_s - now)
                with contextlib.suppress(RuntimeError):  # that session is ending
                    peer.nursery.start_soon(self._flush_routes, peer, wait)

    async def _flush_routes(self, peer: _Peer, wait: float) -> None:
        await trio.sleep(wait)
        peer.routes_flush_scheduled = False
        if self._peers.get(peer.identity) is not peer:
            return  # replaced: the new connection has its own table to send
        updates = self.routes.updates_for(peer.identity)
        if not updates:
            return  # what changed changed back
        peer.routes_sent_at = trio.current_time()
        for start in range(0, len(updates), MAX_WANT_IDS):
            entries = encode_routes(updates[start : start + MAX_WANT_IDS])
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await peer.send(Routes(entries=entries))

    async def _anti_entropy(self, peer: _Peer) -> None:
        await peer.greeted.wait()  # its capabilities choose the forms we send
        while True:
            if peer.reconciler is None:
                peer.reconciler = await self._new_reconciler(peer)
                await self._send_sync(peer, peer.reconciler.initiate())
            await trio.sleep(self._resync_interval_s)
            await self._share_peers(peer)  # the periodic shuffle of peer exchange

    async def _share_peers(self, peer: _Peer) -> None:
        if self.exchange is not None:
            await peer.send(Peers(addresses=self.exchange.sample()[:MAX_PEER_ADDRESSES]))

    async def _refuse(self, peer: _Peer, error: RemoteProtocolError) -> None:
        # Straight to the stream: the writer task has stopped with the session.
        gone = (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError)
        with trio.move_on_after(1), contextlib.suppress(*gone):
            await peer.stream.send_all(encode_message(error_message(error)))

    async def _read_loop(self, peer: _Peer) -> None:
        reader = MessageReader()
        budget = _ReceiveBudget(rate=self._receive_rate, burst=self._receive_burst)
        while data := await peer.stream.receive_some():
            await budget.take(len(data))
            reader.receive_data(data)
            while not isinstance(message := reader.next_event(), NeedData):
                await self._handle(peer, message)

    async def _handle(self, peer: _Peer, message: Message) -> None:
        peer.greeting.receive(message)  # refuses what comes before hello, a second one
        if isinstance(message, Sync):
            await self._on_sync(peer, message.payload)
        elif isinstance(message, Want | Graft | Graft8):
            await self._on_request(peer, message)
        elif isinstance(message, IHave):
            await self._on_ihave(peer, message.ids)
        elif isinstance(message, IHave8):
            await self._on_ihave8(peer, message.split())
        elif isinstance(message, Prune):
            peer.eager = False
        elif isinstance(message, Peers):
            await self._on_peers(peer, message.addresses)
        elif isinstance(message, Push | Deliver):
            await self._on_records(peer, message)
        elif isinstance(message, Routes) and peer.route_budget is not None:
            routes = decode_routes(message.entries)
            await peer.route_budget.take(len(routes))
            self.route_entries_received += len(routes)
            self.routes.receive(peer.identity, routes)
            self._routes_changed()
        elif isinstance(message, Hello | Redeem | ErrorMessage):
            await self._on_hello_or_invite(peer, message)
        # error carries nothing we act on (but an inviter's refusal); routes unasked
        # for are ignored

    async def _present_invite(self, peer: _Peer, capabilities: tuple[str, ...]) -> None:
        """Show our inviter our invite's nonce on every connection (SPEC §12): the
        first binds it to us, the next ones are idempotent."""
        peer.invites = INVITES_CAPABILITY in capabilities
        if self.invites is not None and peer.invites:
            nonce = self.invites.to_present(peer.identity)
            if nonce is not None:
                await peer.send(Redeem(nonce=nonce))

    async def present_invite(self, identity: IdentityId) -> None:
        """Present a ticket taken while connected to its inviter, on that connection
        (a new dial to a connected peer is dropped, so no new hello would carry it)."""
        peer = self._peers.get(identity)
        if peer is not None and peer.greeted.is_set() and peer.invites:
            await self._present_invite(peer, (INVITES_CAPABILITY,))

    async def _on_hello_or_invite(
        self, peer: _Peer, message: Hello | Redeem | ErrorMessage
    ) -> None:
        """Hello (then our invite's nonce, if the peer is our inviter); a joiner's
        `redeem`; the `error` an inviter refused ours with (SPEC §12)."""
        if isinstance(message, Hello):
            self._on_hello(peer, message.capabilities)
            await self._present_invite(peer, message.capabilities)
        elif self.invites is None:
            return  # we did not name `invites`: a `redeem` is ignored, as unknown routes
        elif isinstance(message, Redeem):
            await self.invites.redeem(peer.identity, message.nonce)
        else:
            self.invites.refused(peer.identity, message.code, message.detail)

    async def _expect_hello(self, peer: _Peer) -> None:
        """End the session (`timeout`, SPEC §9.2) if the peer's hello does not
        come in time: a peer that finished the handshake and then says nothing
        would otherwise hold the session, and its slot, for ever."""
        with trio.move_on_after(self.hello_timeout_s):
            await peer.greeted.wait()
            return
        raise RemoteProtocolError(Reason.TIMEOUT, f"no hello within {self.hello_timeout_s:g} s")

    def _on_hello(self, peer: _Peer, capabilities: tuple[str, ...]) -> None:
        peer.grafts = "graft" in capabilities
        peer.delivers = "deliver" in capabilities
        peer.short_ids = "ihave8" in capabilities
        peer.names = "names" in capabilities
        # Both sides must name these: a node that does not claim one does not use it.
        peer.compact_sync = "sync-compact" in capabilities and "sync-compact" in self.capabilities
        peer.sketch_sync = peer.compact_sync and all(
            "sync-sketch" in names for names in (capabilities, self.capabilities)
        )
        if "routes" in capabilities and "routes" in self.capabilities:
            # A new connection (or one replacing another) starts from our whole table.
            self.routes.remove_peer(peer.identity)
            self.routes.add_peer(peer.identity)
            peer.routes = True
            peer.route_budget = _ReceiveBudget(
                rate=_ROUTE_ENTRIES_PER_S, burst=_ROUTE_ENTRIES_BURST
            )
            self._routes_changed()
        peer.greeted.set()

    async def _on_request(self, peer: _Peer, message: Want | Graft | Graft8) -> None:
        """Answer with what we hold; a graft (by ids or prefixes) also rejoins the tree."""
        if isinstance(message, Want):
            ids = list(message.ids)  # a fetch only (anti-entropy, or a peer without `graft`)
        elif isinstance(message, Graft):  # Plumtree's GRAFT: the link rejoins the push tree
            self.tree.on_graft(peer.link)
            ids = list(message.ids)
        else:  # prefixes of what we announced: we saw those lately
            ids = self.tree.on_graft(peer.link, message.split())
        await self._push(peer, await self._store.run(_envelopes(ids)), answer=True)

    async def _on_peers(self, peer: _Peer, addresses: tuple[str, ...]) -> None:
        if self.exchange is not None:
            self.exchange.learn(addresses, source=peer.identity)
            if not peer.dialled:
                await self._share_peers(peer)  # the dialler shuffles; we answer

    async def _on_push(self, peer: _Peer, envelopes: Sequence[bytes], *, forwarded: bool) -> None:
        # A full push (1000 envelopes) holds the store for a while: take it in
        # parts, so our own writes and other peers' batches wait for one part.
        reasons: list[Reason] = []
        for start in range(0, len(envelopes), _INGEST_PART):
            report = await self._ingest(
                envelopes[start : start + _INGEST_PART], source=peer.identity, forwarded=forwarded
            )
            reasons += [i.reason for i in report.items if i.reason is not None]
        _judge(reasons)

    async def _on_records(self, peer: _Peer, message: Push | Deliver) -> None:
        # Large deliveries on links we dialled (our sessions' records) go to the
        # peer's intake (see `_intake`); the rest is stored as it comes.
        bulk = (
            self._verify_ahead
            and isinstance(message, Deliver)
            and peer.dialled
            and peer.checks_ahead
            and len(message.envelopes) > _INGEST_PART
        )
        if not bulk or peer.nursery is None:
            await self._on_push(peer, message.envelopes, forwarded=isinstance(message, Push))
            return
        if peer.intake is None:
            peer.intake, deliveries = trio.open_memory_channel[Sequence[bytes]](2)
            peer.nursery.start_soon(self._intake, peer, deliveries)
        await peer.intake.send(message.envelopes)

    async def _intake(
        self, peer: _Peer, deliveries: trio.MemoryReceiveChannel[Sequence[bytes]]
    ) -> None:
        """Store the records of sessions we started: a join, a catch-up.

        Their signatures are checked in a worker thread while the store writes
        the previous batch on the other core, and what was checked while the
        store was busy goes in one batch (up to `_INTAKE_BATCH`). The reader
        waits when two deliveries are queued, so the peer's sending is held
        back, not buffered. Not for what peers push unasked, nor once a batch
        was mostly refused by quota: an identity farm's records are refused
        *before* their signatures are checked (node/relay) on the inline path,
        so a peer we dialled that delivers a farm costs us at most a few
        batches of checks.
        """
        async with trio.open_nursery() as nursery:
            send, checked = trio.open_memory_channel[_Checked](1)
            checker = self._signature_checker
            check = check_in_thread if checker is None else checker.check
            nursery.start_soon(_check_each, deliveries, send, lambda: peer.checks_ahead, check)
            async with checked:
                async for envelopes, attestations in checked:
                    batch, known = list(envelopes), dict(attestations)
                    with contextlib.suppress(trio.WouldBlock):
                        while len(batch) < _INTAKE_BATCH:
                            more, more_checked = checked.receive_nowait()
                            batch += more
                            known.update(more_checked)
                    report = await self._ingest(
                        batch, source=peer.identity, forwarded=False, checked=known
                    )
                    reasons = [i.reason for i in report.items if i.reason is not None]
                    if reasons.count(Reason.QUOTA) * 10 > len(batch):
                        peer.checks_ahead = False  # what comes next: the inline path
                    _judge(reasons)

    async def _on_sync(self, peer: _Peer, payload: bytes | None) -> None:
        if payload is None:
            await self._send_wants(peer)
            return
        if peer.reconciler is None:
            # A new session reads our whole id list: a peer may not start them back
            # to back (anti-entropy needs one per resync interval).
            now = trio.current_time()
            if now - peer.last_session_started < self._min_session_interval_s:
                raise RemoteProtocolError(Reason.OUT_OF_RANGE, "sync sessions too frequent")
            peer.last_session_started = now
            peer.reconciler = await self._new_reconciler(peer)
        if peer.reconciler.rounds >= self._max_sync_rounds:
            raise RemoteProtocolError(Reason.OUT_OF_RANGE, "sync session over the round limit")
        reply = peer.reconciler.receive(payload)
        await self._send_sync(peer, reply)
        if peer.reconciler.have:
            # We answered the peer's id lists by sending the records themselves.
            owed, peer.reconciler.have = sorted(peer.reconciler.have), set()
            await self._push(peer, await self._store.run(_envelopes(owed)), answer=True)
        if reply is None:
            await self._send_wants(peer)

    async def _send_sync(self, peer: _Peer, payload: bytes | None) -> None:
        self.sync_bytes_sent += len(payload or b"")
        await peer.send(Sync(payload=payload))

    async def _new_reconciler(self, peer: _Peer) -> Reconciler:
        """A session over our whole set, in the forms the peer speaks."""
        items = await self._store.run(_all_items)
        # Sketches over our whole set: numpy builds the reference's tables (sketch_fast).
        return Reconciler(
            items,
            push_missing=True,
            compact=peer.compact_sync,
            sketch=peer.sketch_sync,
            sketch_builder=NumpySketchBuilder(),
        )

    async def _send_wants(self, peer: _Peer) -> None:
        if peer.reconciler is None:
            return
        self.last_sync_at[peer.identity] = trio.current_time()
        wanted = sorted(peer.reconciler.need)
        peer.reconciler = None
        for start in range(0, len(wanted), MAX_WANT_IDS):
            await peer.send(Want(ids=tuple(wanted[start : start + MAX_WANT_IDS])))
