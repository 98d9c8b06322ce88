"""Replication between peers: reconcile on connect, pull what is missing, push what is new.

`GossipNode` keeps one store in step with every connected peer. It serves
each connection (`run_session`: hello first, SPEC §9.2; a reader, a writer,
anti-entropy on links we dialled; the end of a session, however it ends) and
hands each message to the part that owns it:

- `session` — one connection: the peer's capabilities, its outbox and writer,
  its reader and receive budget (`PeerSession`);
- `push` — the push tree's I/O shell (SPEC §9.3): eager pushes, lazy
  announcements, graft timers and prunes decided by `protocol.pushtree`;
- `source_trees` — each issuer's own shortest-path tree where neighbours
  exchange routes (SPEC §9.4), around `protocol.routes`;
- `reconcile` — set reconciliation sessions (SPEC §13) around
  `protocol.sync`, on connect and every `resync_interval_s`;
- `intake` — storing batches: verify, relay policy, store, forward what is
  new, judge the peer by what it sent (node/gossip/policy);
- `exchange` — peer exchange (wire `peers`) for the peer manager;
- `stores` — how this async layer reaches the synchronous store.

All peer bytes go through the intake before they touch the store. A peer
that breaks the protocol gets an `error` message and is disconnected (or
banned: node/gossip/policy); its session never takes the node down. The
names other code imports from here (`CAPABILITIES`, `PeerExchange`,
`StoreAccess`, `ThreadedStore`, `InlineStore`) are re-exported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping, Sequence
from typing import Generic, TypeVar, cast, overload

import trio

from node.errors import StoreError
from node.gossip.exchange import AddressSharing, PeerExchange
from node.gossip.extensions import Send, SessionExtension
from node.gossip.intake import Intake, complete
from node.gossip.policy import PEER_POLICY, Action, BanList
from node.gossip.push import PushShell
from node.gossip.reconcile import Reconciliation
from node.gossip.session import AGENT, CAPABILITIES, FINISH_WRITE_S, PeerSession, ReceiveBudget
from node.gossip.signatures import SignatureChecker
from node.gossip.source_trees import SourceTrees
from node.gossip.stores import InlineStore, StoreAccess, ThreadedStore
from node.net.transport import PeerStream
from node.store import IngestReport
from node.store.pipeline import Admission
from protocol.attestation import Attestation, AttestationId
from protocol.errors import RemoteProtocolError
from protocol.greeting import HELLO_TIMEOUT_S
from protocol.identity import IdentityId, short_identity_text
from protocol.pushtree import PushTree, TreeLink
from protocol.routes import RouteTable
from protocol.wire import (
    Deliver,
    Graft,
    Graft8,
    Hello,
    IHave,
    IHave8,
    Message,
    Peers,
    Prune,
    Push,
    Routes,
    Sync,
    Want,
)

__all__ = [
    "CAPABILITIES",
    "GossipNode",
    "InlineStore",
    "PeerExchange",
    "Send",
    "SessionExtension",
    "StoreAccess",
    "ThreadedStore",
]

T = TypeVar("T")
log = logging.getLogger("trustnode.gossip")


class _OnPart(Generic[T]):
    """A `GossipNode` attribute that lives on one of its parts, under the same name.

    The figures and hooks callers read and set on the node (simulations,
    benchmarks, the service) stay where they were while each part keeps its own.
    """

    def __init__(self, part: str) -> None:
        self._part = part
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, node: None, owner: type) -> _OnPart[T]: ...
    @overload
    def __get__(self, node: GossipNode, owner: type) -> T: ...
    def __get__(self, node: GossipNode | None, owner: type) -> _OnPart[T] | T:
        if node is None:
            return self
        return cast(T, getattr(getattr(node, self._part), self._name))

    def __set__(self, node: GossipNode, value: T) -> None:
        setattr(getattr(node, self._part), self._name, value)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception of a (possibly nested) group."""
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _keeps_new_connection(ours: IdentityId | None, peer: IdentityId, *, initiator: bool) -> bool:
    """Two connections to one peer (both dialled at once): keep the one that the
    smaller identity dialled, a rule both sides apply alike. Without knowing
    our own identity, keep the older one."""
    if ours is None:
        return False
    dialler = ours if initiator else peer
    return dialler == min(ours, peer)


class GossipNode:
    """Keeps one store in step with every connected peer, through its parts."""

    # Figures and hooks of the parts, read (and the hooks set) by callers.
    tree: _OnPart[PushTree] = _OnPart("push")
    grafts_sent: _OnPart[int] = _OnPart("push")  # links we asked back into the push tree
    announcements_received: _OnPart[int] = _OnPart("push")
    announcement_bytes_received: _OnPart[int] = _OnPart("push")  # the ids or prefixes in them
    routes: _OnPart[RouteTable] = _OnPart("source_trees")
    sync_bytes_sent: _OnPart[int] = _OnPart("reconcile")  # SPEC §13 payloads, not records
    last_sync_at: _OnPart[dict[IdentityId, float]] = _OnPart("reconcile")  # each peer's last
    stored_from_peers: _OnPart[int] = _OnPart("intake")
    payload_copies_received: _OnPart[int] = _OnPart("intake")
    payload_bytes_received: _OnPart[int] = _OnPart("intake")
    last_stored_at: _OnPart[float | None] = _OnPart("intake")  # trio time of the last batch
    # Called with the ids of each stored batch (simulations record arrival times).
    stored_hook: _OnPart[Callable[[list[AttestationId]], None] | None] = _OnPart("intake")

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
        self.identity = identity  # ours: breaks ties between duplicate connections
        self._peers: dict[IdentityId, PeerSession] = {}  # the parts read it, only we change it
        # Distances to issuers, for their source trees (SPEC §9.4); changes are
        # told to each neighbour at most once per `route_delay_s`.
        self.source_trees = SourceTrees(self._peers, identity=identity, route_delay_s=route_delay_s)
        self.push = PushShell(
            self._peers,
            store=store,
            routes=self.source_trees.routes,
            graft_timeout_s=graft_timeout_s,
            coalesce_s=coalesce_s,
            announce_delay_s=announce_delay_s,
        )
        self.reconcile = Reconciliation(
            store=store,
            push=self.push,
            min_session_interval_s=min_session_interval_s,
            max_sync_rounds=max_sync_rounds,
        )
        self.intake = Intake(
            store=store,
            push=self.push,
            wall_clock_ms=wall_clock_ms,
            max_skew_ms=max_skew_ms,
            admit=admit,
            verified_cache=verified_cache,
            verify_ahead=verify_ahead,
            signature_checker=signature_checker,
        )
        self.sharing = AddressSharing()
        self._receive_rate = max_receive_bytes_per_s
        self._receive_burst = receive_burst_bytes
        self.hello_timeout_s = HELLO_TIMEOUT_S  # SPEC §9.2; tests may shorten it
        # SPEC §9.2: no byte for this long in the middle of a message ends the session.
        self.unfinished_timeout_s = 10.0
        self._resync_interval_s = resync_interval_s
        # What our hello names (SPEC §9.2); tests set fewer to play an older peer.
        self.capabilities: tuple[str, ...] = CAPABILITIES
        self.describe: Callable[[IdentityId], str] = short_identity_text  # a peer in our logs
        self.bans = BanList(clock=trio.current_time)
        self.protocol_errors = 0
        self._closing = False  # see close()
        self.store_errors = 0  # sessions ended because our store refused a write
        # Message handlers outside the core (dial-back, circuits: SPEC §15).
        self.extensions: list[SessionExtension] = []

    @property
    def exchange(self) -> PeerExchange | None:
        """Where peer exchange's addresses come and go; set by the peer manager."""
        return self.sharing.source

    @exchange.setter
    def exchange(self, exchange: PeerExchange | None) -> None:
        self.sharing.source = exchange

    @property
    def route_entries_received(self) -> int:
        """Route entries peers sent us (SPEC §9.4)."""
        return self.source_trees.entries_received

    async def wait_progress(self) -> None:
        """Wait until the next batch from a peer has been stored (see `stored_from_peers`)."""
        await self.intake.progress.wait()

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
        envelopes = [a.data for a in attestations]
        report = await self.intake.ingest(envelopes, source=None, now_ms=now_ms)
        return complete(report, envelopes)

    async def ingest_local(self, envelopes: Sequence[bytes]) -> IngestReport:
        """Verify and store envelopes from a local source (an import file, an app),
        skipping the relay quotas, and push the new ones to every peer. The report
        has one item per envelope."""
        report = await self.intake.ingest(envelopes, source=None)
        return complete(report, envelopes)

    @property
    def stored_signal(self) -> trio.Event:
        """An event set when the next batch (from a peer or local) is stored.

        Take it *before* reading the store, then wait on it: nothing stored in
        between can be missed.
        """
        return self.intake.stored_signal

    def _admit_session(
        self, stream: PeerStream, *, initiator: bool, lazy: bool
    ) -> PeerSession | None:
        """The new session's peer, replacing an older connection to it; None to refuse."""
        existing = self._peers.get(stream.peer)
        if self.bans.is_banned(stream.peer) or (
            existing is not None
            and not _keeps_new_connection(self.identity, stream.peer, initiator=initiator)
        ):
            return None
        if existing is not None and existing.nursery is not None:
            existing.nursery.cancel_scope.cancel()  # it ends; this one replaces it
        # A replacement carries on the link's place in the push tree (cutting a
        # tree link, or closing a cycle, would cost grafts or duplicates).
        eager = existing.eager if existing is not None else not lazy
        link = TreeLink(eager=eager, takes_naming=False)  # until its hello names `names`
        peer = PeerSession(identity=stream.peer, stream=stream, dialled=initiator, link=link)
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
            log.debug("peer %s: a second connection refused", self.describe(stream.peer))
            await stream.aclose_gracefully()  # a clean end (SPEC §11), within its bound
            return False
        lazy = not peer.eager
        # One line per connection event; a replaced connection's end says nothing more.
        direction = "outbound" if initiator else "inbound"
        event = "reconnected" if replacing else "connected"
        log.info("peer %s %s (%s)", self.describe(peer.identity), event, direction)
        ended = "closed"
        try:
            async with trio.open_nursery() as nursery:
                peer.nursery = nursery
                nursery.start_soon(peer.write_loop)
                nursery.start_soon(peer.expect_hello, self.hello_timeout_s)
                await peer.send(Hello(capabilities=self.capabilities, agent=AGENT))
                if lazy:
                    await peer.send(Prune())
                if initiator:
                    await self.sharing.share(peer)
                if initiator:
                    # Only the dialling side starts sessions, so a connection never
                    # carries two at once; it repeats them to repair missed pushes.
                    nursery.start_soon(self._anti_entropy, peer)
                budget = ReceiveBudget(rate=self._receive_rate, burst=self._receive_burst)
                try:
                    await peer.read_loop(
                        self._handle, budget=budget, unfinished_s=self.unfinished_timeout_s
                    )
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
            await peer.refuse(error)
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

    async def _end_session(self, peer: PeerSession, *, why: str) -> None:
        current = self._peers.get(peer.identity) is peer  # not replaced by a newer connection
        if current:
            del self._peers[peer.identity]
            for extension in self.extensions:
                extension.ended(peer.identity)
            if peer.routes and not self._closing:
                self.source_trees.stop(peer.identity)
        # The close record, also when the node is shutting down or the session was
        # cancelled (SPEC §11): without it every end reads as a truncation. Bounded.
        with trio.CancelScope(shield=True, deadline=trio.current_time() + 2 * FINISH_WRITE_S):
            await peer.stream.aclose_gracefully()
        await trio.aclose_forcefully(peer.stream)  # if that ran out of time
        if current:
            level = logging.WARNING if why.startswith("our store") else logging.INFO
            log.log(level, "peer %s disconnected: %s", self.describe(peer.identity), why)

    async def _anti_entropy(self, peer: PeerSession) -> None:
        await peer.greeted.wait()  # its capabilities choose the forms we send
        while True:
            await self.reconcile.start(peer)
            await trio.sleep(self._resync_interval_s)
            await self.sharing.share(peer)  # the periodic shuffle of peer exchange

    async def _handle(self, peer: PeerSession, message: Message) -> None:
        """Hand one message to the part that owns it: the frequent kinds first, by
        one isinstance each (this runs for every message received), the rest in
        `_handle_rare`; then to the extensions that take its kind (SPEC §15)."""
        peer.greeting.receive(message)  # refuses what comes before hello, a second one
        if isinstance(message, Push | Deliver):
            await self.intake.on_records(peer, message)
        elif isinstance(message, IHave8):
            await self.push.on_ihave8(peer, message.split())
        elif isinstance(message, IHave):
            await self.push.on_ihave(peer, message.ids)
        elif isinstance(message, Want | Graft | Graft8):
            await self.push.on_request(peer, message)
        elif isinstance(message, Sync):
            await self.reconcile.on_sync(peer, message.payload)
        elif isinstance(message, Peers):
            await self.sharing.on_peers(peer, message.addresses)
        else:
            await self._handle_rare(peer, message)
        # Inline, not a helper coroutine: one more coroutine per message is measurable.
        for extension in self.extensions:
            if extension.handles(message):
                await extension.receive(peer.identity, message, peer.stream, peer.send)

    async def _handle_rare(self, peer: PeerSession, message: Message) -> None:
        if isinstance(message, Prune):
            peer.eager = False
        elif isinstance(message, Hello):
            self._on_hello(peer, message.capabilities)
        elif isinstance(message, Routes) and peer.route_budget is not None:
            await self.source_trees.receive(peer, message)
        # error carries nothing we act on; routes unasked for are ignored

    def _on_hello(self, peer: PeerSession, capabilities: tuple[str, ...]) -> None:
        if peer.hear_hello(capabilities, self.capabilities):
            self.source_trees.start(peer)
        for extension in self.extensions:
            extension.greeted(peer.identity, capabilities, peer.stream, peer.send)
        peer.greeted.set()
