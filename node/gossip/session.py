"""One connection to one peer: what it said in hello, its outbox, its reader and budget.

A `PeerSession` is the per-connection state every part of the gossip layer
shares (node/gossip/gossip_node): the capabilities the peer's hello named
(they choose the forms we send it, SPEC §9.2), its place in the push tree
(`protocol.pushtree.TreeLink`), the reconciliation in progress with it, and
the outbox a writer task drains. Sending never blocks the reader, so two
peers answering each other's requests at once cannot deadlock on full
windows; the outbox is bounded in bytes, and what the reader takes from a peer
is bounded by a token bucket (`ReceiveBudget`) and, within a message, in time.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import trio

from node.net.transport import PeerStream
from protocol.attestation import is_naming_envelope
from protocol.errors import Reason, RemoteProtocolError
from protocol.events import NeedData
from protocol.greeting import Greeting, error_message
from protocol.identity import IdentityId
from protocol.pushtree import TreeLink
from protocol.sync import Reconciler
from protocol.wire import Deliver, Message, MessageReader, Push, encode_message

__all__ = ["AGENT", "CAPABILITIES", "OutboxFullError", "PeerSession", "ReceiveBudget"]

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
_MAX_OUTBOX_BYTES = 32 * 1024 * 1024
_MAX_PARTS_PER_WRITE = 64
FINISH_WRITE_S = 1.0  # a write in flight when a session ends (see PeerSession.write_loop)


# What the reader hands each message to (GossipNode._handle).
Handler = Callable[["PeerSession", Message], Awaitable[None]]


class OutboxFullError(trio.BrokenResourceError):
    """A peer stopped reading while we owed it more than the outbox bound."""


@dataclass
class PeerSession:
    """One connection. Sending never blocks the reader: messages go to an outbox
    that a writer task drains, so two peers answering each other's requests at
    once cannot deadlock on full windows. The outbox is bounded in bytes."""

    identity: IdentityId
    stream: PeerStream
    outbox_bytes: int = 0
    reconciler: Reconciler | None = None  # the sync session in progress (node/gossip/reconcile)
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
    routes_flush_scheduled: bool = False
    routes_sent_at: float = float("-inf")  # trio time we last sent it our route changes
    route_budget: ReceiveBudget | None = None  # entries, not bytes (node/gossip/source_trees)
    last_session_started: float = float("-inf")  # trio time the peer last opened a sync
    outbox: trio.MemorySendChannel[bytes] = field(init=False)
    inbox: trio.MemoryReceiveChannel[bytes] = field(init=False)
    greeted: trio.Event = field(default_factory=trio.Event)  # its hello arrived
    greeting: Greeting = field(default_factory=Greeting)  # hello first, once (SPEC §9.2)
    writing: trio.CancelScope | None = None  # the write in flight (see write_loop)
    finish_writes_by: float = math.inf  # when the session ends: see finish_writing()
    # Deliveries on their way to the bulk intake (node/gossip/intake).
    intake: trio.MemorySendChannel[Sequence[bytes]] | None = None
    checks_ahead: bool = True  # off once its deliveries are mostly over quota (intake)
    graft_timer: bool = False  # a task works through `link.graft_due` (node/gossip/push)

    def __post_init__(self) -> None:
        self.outbox, self.inbox = trio.open_memory_channel[bytes](float("inf"))

    @property
    def eager(self) -> bool:
        """We push payloads to this peer (else announce ids: the push tree)."""
        return self.link.eager

    @eager.setter
    def eager(self, eager: bool) -> None:
        self.link.eager = eager

    def hear_hello(self, capabilities: tuple[str, ...], ours: tuple[str, ...]) -> bool:
        """Take the forms the peer's hello names (SPEC §9.2); True if we both
        said `routes` (the caller then starts the link's source trees)."""
        self.grafts = "graft" in capabilities
        self.delivers = "deliver" in capabilities
        self.short_ids = "ihave8" in capabilities
        self.names = self.link.takes_naming = "names" in capabilities
        # Both sides must name these: a node that does not claim one does not use it.
        self.compact_sync = "sync-compact" in capabilities and "sync-compact" in ours
        self.sketch_sync = self.compact_sync and all(
            "sync-sketch" in names for names in (capabilities, ours)
        )
        return "routes" in capabilities and "routes" in ours

    async def send(self, message: Message) -> None:
        """Queue `message` for the writer; OutboxFullError past the outbox bound."""
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
        """The writer task: drain the outbox to the stream, queued messages together."""
        async for first in self.inbox:
            # Whatever else is queued goes in the same write (one record, one send).
            parts = [first]
            while len(parts) < _MAX_PARTS_PER_WRITE:
                try:
                    parts.append(self.inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            data = b"".join(parts) if len(parts) > 1 else first
            # A write cut off halfway breaks the channel (node/net/transport), and then
            # the `error` that ends a session could not follow it: when the session
            # ends, the write in flight gets until `finish_writes_by` to complete.
            with trio.CancelScope(shield=True, deadline=self.finish_writes_by) as writing:
                self.writing = writing
                await self.stream.send_all(data)
            self.writing = None
            self.outbox_bytes -= len(data)

    async def read_loop(
        self, handle: Handler, *, budget: ReceiveBudget, unfinished_s: float
    ) -> None:
        """The reader: the peer's bytes, within `budget`, to `handle` message by
        message, in order, until the stream ends. Idle between messages is a
        peer's right and costs nothing here; only a message begun and left
        unfinished gets a deadline (`_receive_rest`)."""
        reader = MessageReader()
        receive_some = self.stream.receive_some
        while True:
            data = await (
                self._receive_rest(unfinished_s) if reader.buffered_bytes else receive_some()
            )
            if not data:
                return
            await budget.take(len(data))
            reader.receive_data(data)
            while not isinstance(message := reader.next_event(), NeedData):
                await handle(self, message)

    async def _receive_rest(self, timeout_s: float) -> bytes:
        """The next bytes in the middle of a message: `timeout_s` without one ends
        the session (`timeout`, SPEC §9.2), since a length prefix and then silence
        would hold it, and its buffer, for ever. (A cancel scope on every read,
        between messages too, is measurable in a simulation's million deliveries.)"""
        with trio.move_on_after(timeout_s):
            return await self.stream.receive_some()
        raise RemoteProtocolError(Reason.TIMEOUT, f"a message left unfinished for {timeout_s:g} s")

    async def expect_hello(self, timeout_s: float) -> None:
        """End the session (`timeout`, SPEC §9.2) if the peer's hello does not
        come in time: a peer that finished the handshake and then says nothing
        would otherwise hold the session, and its slot, for ever."""
        with trio.move_on_after(timeout_s):
            await self.greeted.wait()
            return
        raise RemoteProtocolError(Reason.TIMEOUT, f"no hello within {timeout_s:g} s")

    async def refuse(self, error: RemoteProtocolError) -> None:
        """Tell the peer why its session ends (an `error` message), within a bound."""
        # Straight to the stream: the writer task has stopped with the session.
        gone = (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError)
        with trio.move_on_after(1), contextlib.suppress(*gone):
            await self.stream.send_all(encode_message(error_message(error)))

    def finish_writing(self) -> None:
        """The session ends: the write in flight may complete, within a bound."""
        self.finish_writes_by = trio.current_time() + FINISH_WRITE_S
        if self.writing is not None:
            self.writing.deadline = self.finish_writes_by


class ReceiveBudget:
    """A token bucket on what is read from one peer (bytes, or route entries).

    When a peer sends faster than `rate` per second (after a `burst`), we stop
    reading from it for a while: TCP (or the simulated window) pushes back on
    the sender, our CPU per peer stays bounded and nothing queues up here.
    """

    def __init__(self, *, rate: float, burst: float) -> None:
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._last = trio.current_time()

    async def take(self, count: int) -> None:
        """Spend `count`; sleep until the bucket is no longer in debt."""
        now = trio.current_time()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= count
        if self._tokens < 0:
            await trio.sleep(-self._tokens / self._rate)
