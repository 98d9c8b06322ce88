"""The one assembly of a `Node`: every part explicit, for the daemon and the simulations.

A node is made of

* an **identity key** (it signs everything the node says);
* a **store**: a SQLite file (a write connection and a reader, store work in
  a worker thread), SQLite in memory, or a `MemoryStore` (both run inline,
  for simulations on a MockClock);
* a **network** to dial and listen on (`node.service.networks`: TCP, or a
  place on a `SimNetwork`), or none (a node that only reads and writes its
  store, as the CLI's offline commands do);
* a **channel** that makes connections peer streams: Noise (the daemon's) or
  the simulations' lighter plain one;
* a **clock** (unix milliseconds: the system's, or one driven by trio's
  MockClock).

The gossip settings a caller may change come with it (`Tuning`, and the
`PeerManagerConfig` and `RelayPolicy` it holds), so a caller needs no import
from `node.gossip`. `build_node` wires these into the relay gate, the signature checker, the
`GossipNode` and (when the node starts) the `PeerManager`; the trust engine
is built on the first question. `open_node` (a data directory, TCP, the
system clock) and `simulations.world.World` (a `SimNetwork`, a MockClock,
in-memory stores) both call it, so a simulated member runs the daemon's
wiring: a change here changes both, or neither.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from node.errors import StoreCorruptError
from node.gossip.gossip_node import GossipNode, InlineStore, StoreAccess, ThreadedStore
from node.gossip.peers import PeerManagerConfig
from node.gossip.relay import RelayGate, RelayPolicy
from node.gossip.signatures import SignatureChecker
from node.home.config import NodeConfig
from node.names import PetnameBook
from node.net.transport import OpenChannel, ServeChannel, open_secure_stream, serve_secure
from node.service.core import FailureWatch
from node.service.networks import Network
from node.service.node import Node
from node.store import AttestationStore
from protocol.attestation import Attestation, AttestationId
from protocol.identity import IdentityKey, decode_identity_text

__all__ = [
    "NOISE",
    "Channel",
    "NodeParts",
    "PeerManagerConfig",
    "RelayPolicy",
    "Stores",
    "Tuning",
    "build_node",
    "system_clock_ms",
]

T = TypeVar("T")


def system_clock_ms() -> int:
    """Wall-clock time in unix milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Channel:
    """How a connection becomes a peer stream, each way."""

    open: OpenChannel
    serve: ServeChannel


NOISE = Channel(open=open_secure_stream, serve=serve_secure)
"""The daemon's channel: Noise XX bound to the community (SPEC §8)."""


@dataclass(frozen=True, slots=True)
class Stores:
    """The store a node writes and the one its questions read (the same one, or not).

    `inline`: store calls run in the event loop's thread, as a MockClock needs
    (a worker thread would let the autojump clock race ahead of the store);
    otherwise in a worker thread, one at a time, and a damaged store stops the
    node.
    """

    writer: AttestationStore
    reader: AttestationStore
    inline: bool = False

    @classmethod
    def in_memory(cls, store: AttestationStore) -> Stores:
        """One in-memory store (SQLite `:memory:` or a `MemoryStore`), run inline."""
        return cls(writer=store, reader=store, inline=True)


@dataclass(frozen=True, kw_only=True)
class Tuning:
    """The knobs the simulations set differently from the daemon; defaults are the daemon's.

    `relay`: None stores everything valid (no relay policy); `DAEMON_RELAY`
    takes the quota from the configuration. `verify_ahead` checks a join's
    signatures in a worker process (not on a MockClock). `verified_cache`
    shares verified envelopes between members of one simulation (see
    `node.store.ingest`; the daemon never shares one). `source_trees: False`
    leaves out route exchange (SPEC §9.4). `on_stored` hears every stored batch.
    """

    relay: RelayPolicy | Literal["config"] | None = "config"
    peers: PeerManagerConfig = field(default_factory=PeerManagerConfig)
    verify_ahead: bool = True
    verified_cache: MutableMapping[bytes, Attestation] | None = None
    source_trees: bool = True
    on_stored: Callable[[list[AttestationId]], None] | None = None


@dataclass(frozen=True, kw_only=True)
class NodeParts:
    """Everything a node is made of; `build_node` wires it."""

    config: NodeConfig
    key: IdentityKey
    stores: Stores
    network: Network | None = None
    channel: Channel = NOISE
    clock: Callable[[], int] = system_clock_ms
    rng: random.Random = field(default_factory=random.Random)
    petnames: PetnameBook | None = None
    tuning: Tuning = field(default_factory=Tuning)


def build_node(parts: NodeParts) -> Node:
    """A node from `parts`, not yet running (`Node.start` listens and dials).

    Call it inside `trio.run` (the node reads trio's clock for its uptime).
    """
    config, key, tuning = parts.config, parts.key, parts.tuning
    anchors = (key.identity, *(decode_identity_text(a) for a in config.relay_anchors))
    policy = (
        RelayPolicy(unvouched_quota=config.unvouched_quota)
        if tuning.relay == "config"
        else tuning.relay
    )
    gate = None
    if policy is not None:
        gate = RelayGate(anchors=list(anchors), policy=policy, wall_clock_ms=parts.clock)
    watch = FailureWatch()
    store, reader = _accesses(parts.stores, watch.report)
    checker = SignatureChecker() if tuning.verify_ahead else None  # its process starts on use
    gossip = GossipNode(
        store=store,
        wall_clock_ms=parts.clock,
        max_skew_ms=config.max_skew_s * 1000,
        admit=gate,
        resync_interval_s=config.resync_interval_s,
        identity=key.identity,  # the root of our attestations' source tree (SPEC §9.4)
        # A join checks signatures in a worker process, stores on another core.
        verify_ahead=tuning.verify_ahead,
        signature_checker=checker,
        verified_cache=tuning.verified_cache,
    )
    if not tuning.source_trees:
        gossip.capabilities = tuple(c for c in gossip.capabilities if c != "routes")
    gossip.stored_hook = tuning.on_stored
    return Node(
        config,
        key=key,
        anchors=anchors,
        store=store,
        reader=reader,
        gossip=gossip,
        gate=gate,
        signature_checker=checker,
        clock=parts.clock,
        watch=watch,
        network=parts.network,
        channel=(parts.channel.open, parts.channel.serve),
        rng=parts.rng,
        peer_config=tuning.peers,
        petnames=parts.petnames,
        inline=parts.stores.inline,
    )


def _accesses(
    stores: Stores, corrupted: Callable[[StoreCorruptError], None]
) -> tuple[StoreAccess, StoreAccess]:
    """How the node reaches its stores: inline (MockClock), or in worker threads."""
    if stores.inline:
        writer: StoreAccess = InlineStore(stores.writer)
        if stores.reader is stores.writer:
            return writer, writer
        return writer, InlineStore(stores.reader)
    return WatchedStore(stores.writer, corrupted), WatchedStore(stores.reader, corrupted)


class WatchedStore(ThreadedStore[AttestationStore]):
    """A `ThreadedStore` that tells its node when the store turns out damaged."""

    def __init__(
        self, store: AttestationStore, corrupted: Callable[[StoreCorruptError], None]
    ) -> None:
        super().__init__(store)
        self._corrupted = corrupted

    async def run(self, operation: Callable[[AttestationStore], T]) -> T:
        """Run `operation(store)` in a thread; a `StoreCorruptError` also stops the node."""
        try:
            return await super().run(operation)
        except StoreCorruptError as exc:
            self._corrupted(exc)
            raise
