"""What every part of a `Node` shares: its key, stores, clock, gossip and network parts.

`Node` (node/service/node.py) is a facade over four parts, one module each:
saying things (`publishing`), trust questions (`questions`), reading the store
and naming (`reading`) and peers and health (`networking`). They all stand on
this core, which holds what `node.service.assemble.build_node` wired and
nothing else, so each part can be read on its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import trio

from node.errors import StoreCorruptError
from node.gossip.circuits import Circuits
from node.gossip.gossip_node import GossipNode, StoreAccess
from node.gossip.peers import PeerManager, PeerManagerConfig
from node.gossip.punching import Punching
from node.gossip.reachability import Reachability
from node.gossip.relay import RelayGate
from node.gossip.signatures import SignatureChecker
from node.home.config import NodeConfig
from node.home.nextkey import KeyFiles
from node.names import NameSource, PetnameBook
from node.names.index import NameIndex
from node.net.lan import LanDiscovery
from node.net.portmap import PortMapper
from node.net.transport import OpenChannel, ServeChannel, open_secure_stream, serve_secure
from node.service.invites import open_invite_desk
from node.service.networks import Network
from node.trust import TrustEngine
from protocol.identity import IdentityId, IdentityKey, short_identity_text
from protocol.succession import IdentityBook

__all__ = ["FailureWatch", "NodeCore", "StoreAccess", "later_root_keys"]


def later_root_keys(book: IdentityBook, key: IdentityId) -> frozenset[IdentityId]:
    """The root keys that succeeded `key` in its member's chain (SPEC §17; empty: none).

    Only later ones: a key rotated away may be the one whose theft the rotation
    answered, so an invite never moves back to it (SPEC §12.2).
    """
    keys = [root for root, _ in book.chain(key)]
    return frozenset(keys[keys.index(key) + 1 :]) if key in keys else frozenset()


class FailureWatch:
    """A damaged store stops the node, through either connection.

    Each sync session would otherwise meet the same bad page again, many times
    a second. The first error is kept for whoever opened the node to raise.
    """

    def __init__(self) -> None:
        self.error: StoreCorruptError | None = None
        self.stop: trio.CancelScope | None = None

    def report(self, error: StoreCorruptError) -> None:
        """The store is damaged: remember `error` and stop the node's tasks."""
        if self.error is None:
            self.error = error
        if self.stop is not None:
            self.stop.cancel()


class NodeCore:
    """The parts a node is made of (see `node.service.assemble`)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        key: IdentityKey,
        anchors: tuple[IdentityId, ...],
        store: StoreAccess,
        reader: StoreAccess,
        gossip: GossipNode,
        gate: RelayGate | None,
        signature_checker: SignatureChecker | None,
        clock: Callable[[], int],
        watch: FailureWatch,
        network: Network | None = None,
        channel: tuple[OpenChannel, ServeChannel] = (open_secure_stream, serve_secure),
        rng: random.Random | None = None,
        peer_config: PeerManagerConfig | None = None,
        petnames: PetnameBook | None = None,
        inline: bool = False,
    ) -> None:
        self.config = config
        self._key = key
        # The key our handshakes prove, from `start` on: a rotation changes `_key`,
        # not the running network's (node.service.rotation), so an invite names this one.
        self._transport_key: IdentityKey | None = None
        # Where the key files live (the daemon's data directory; None in memory): a
        # rotation writes them (node.service.rotation, node.home.nextkey).
        self.key_files: KeyFiles | None = None
        self._anchors = anchors  # relay anchors; also names `resolve_identity` may complete
        self._store = store
        # Queries read through a second connection when the store has one: in WAL
        # mode readers never wait for the writer, so the API keeps answering while
        # a peer's big batch (signature checks, commit) holds the write connection.
        self._reader = reader
        self.gossip = gossip
        self.gossip.describe = self._describe_peer  # log lines name peers as we do
        self._gate = gate
        self.signature_checker = signature_checker
        self._clock = clock
        # Store calls and trust answers run in the event loop's thread (a MockClock
        # would jump ahead while a worker thread computes), else in worker threads.
        self._inline = inline
        self._watch = watch
        self._network = network
        self._channel = channel
        self._rng = rng or random.Random()  # noqa: S311 - peer choice, not secrets
        self._peer_config = peer_config or PeerManagerConfig()
        self._petnames = petnames or PetnameBook(None)
        self._names = NameIndex()
        self._names_lock = trio.Lock()
        self.peer_manager: PeerManager | None = None
        self.lan: LanDiscovery | None = None  # with [network] lan_discovery
        self.reachability: Reachability | None = None  # with [network] reachability_checks
        self.circuits: Circuits | None = None  # with [network] circuits
        self.port_mapper: PortMapper | None = None  # with [network] port_mapping
        self.punching: Punching | None = None  # with [network] punch (and circuits)
        self.advertised: tuple[str, ...] = ()  # own addresses given to the peer manager
        self.listen_address: str | None = None
        self._bound: tuple[str, int] | None = None  # (host, port) the listener has
        self._started = trio.current_time()
        self._engine: TrustEngine | None = None  # built on the first question
        self._engine_lock = trio.Lock()
        self._cursor = 0  # how far the engine has read the change feed
        # Single-use invites, enforced (SPEC §12.2); in memory until `keep_invites_in`.
        self.invites = open_invite_desk(
            None, gossip=gossip, gate=gate, wall_clock_ms=clock, chain_of=self.chain_of
        )

    def keep_invites_in(self, folder: Path) -> None:
        """Keep the invite book and ticket in `folder` (the data directory: durable).

        Raises:
            StoreError: `invites.json` or `invite.json` there is damaged.
        """
        self.invites = open_invite_desk(
            folder, gossip=self.gossip, gate=self._gate, wall_clock_ms=self._clock,
            chain_of=self.chain_of,
        )  # fmt: skip

    async def chain_of(self, key: IdentityId) -> frozenset[IdentityId]:
        """The root keys that succeeded `key`, as the rotations we hold chain them (§17).

        What the invite desk asks: an invite outlives its inviter's (or joiner's)
        rotation, since a rotation is signed by the key the last one committed to.
        """
        found = await self._reader.run(lambda s: s.key_bindings())
        book = IdentityBook(now_ms=self._clock())
        for attestation in found:
            book.add(attestation)
        return later_root_keys(book, key)

    def _describe_peer(self, identity: IdentityId) -> str:
        """A peer in log lines: its short id, and our name for it if we have one. From
        the last name book built (a log line never waits for the store; the daemon
        builds one at start), so a name given since may show a little later."""
        short = short_identity_text(identity) + "…"
        book = self._names.last_book
        resolved = None if book is None else book.resolve(identity)
        if resolved is None or resolved.source is NameSource.ID:
            return short
        return f"{short} ({resolved.label})"  # labels hold no control character (SPEC §3.4)

    @property
    def identity(self) -> IdentityId:
        """This node's identity (the issuer of everything it signs)."""
        return self._key.identity

    def stop_with(self, scope: trio.CancelScope) -> None:
        """Cancel `scope` (the node's tasks) if the store turns out damaged."""
        self._watch.stop = scope

    @property
    def failure(self) -> StoreCorruptError | None:
        """The store damage that stopped the node, if any."""
        return self._watch.error
