"""Relayed circuits (SPEC §15.3): two members that cannot dial each other talk through a third.

A member behind NAT accepts no connection, so two of them never meet directly.
A member both are connected to - one that is reachable - can relay: the opener
sends it `circuit_open` naming the target; the relay, if its policy allows
(both ends are members it trusts, each within its quotas), tells the target
with a `circuit_open` naming the target itself ("someone connects to you"),
and from then on forwards `circuit_data` between the two sessions, renaming
the circuit id. The ends run the community handshake (SPEC §10) and the
transport (§11) *inside* the circuit, end to end: the relay sees ciphertext,
the two identities it connects, and byte counts. A gossip session then runs on
the circuit as on any connection.

Relay policy = trust, with per-member quotas: at most `max_circuits` circuits
with a member at either end at once, and at most `max_bytes` relayed from each
member per `window_s`; over it, the relay closes that member's circuit (`quota`)
- a member cannot use someone else's node as a free pipe.

Flow control is the sessions' own: circuit bytes go through each session's
bounded outbox, and an end that buffers more than `max_buffered_bytes` unread
closes the circuit.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from node.net.transport import HandshakeTimeoutError, PeerStream, open_secure_stream
from protocol.channel import Community
from protocol.errors import RemoteProtocolError
from protocol.handshake import Role
from protocol.identity import IdentityId, IdentityKey, short_identity_text
from protocol.wire import (
    CIRCUIT_ID_BYTES,
    MAX_CIRCUIT_DATA,
    CircuitClose,
    CircuitData,
    CircuitOpen,
    Message,
)

__all__ = ["CAPABILITY", "CircuitConfig", "CircuitStream", "Circuits", "RelayQuotas"]

CAPABILITY = "circuit"
log = logging.getLogger("trustnode.circuits")
Send = Callable[[Message], Awaitable[None]]
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitConfig:
    """Whether we relay, and the quotas of each member we relay for."""

    relay: bool = False  # relay for others (a reachable member's job)
    max_circuits: int = 4  # circuits with a member at either end, at once
    max_bytes: int = 64 * 1024 * 1024  # relayed from one member per window
    window_s: float = 3600.0
    max_buffered_bytes: int = 4 * 1024 * 1024  # received on one end, unread
    max_ends: int = 16  # circuits ending here at once
    handshake_timeout_s: float = 10.0
    reach_interval_s: float = 60.0  # how often we try to reach `targets` we lack
    notice_s: float = 5.0  # how soon a new target or a new relay is tried (not a full round)
    reach_per_round: int = 2  # targets tried per round (each through every relay)


class _Gossip(Protocol):
    extensions: list[Any]
    capabilities: tuple[str, ...]

    @property
    def peers(self) -> list[IdentityId]: ...

    async def run_session(
        self, stream: PeerStream, *, initiator: bool, lazy: bool = False
    ) -> bool: ...


@dataclass(slots=True)
class _Usage:
    circuits: int = 0
    bytes: int = 0
    window_started: float = float("-inf")


class RelayQuotas:
    """A relay's quotas for each member it relays for (the module doc): at most
    `max_circuits` circuits with the member at either end at once, at most
    `max_bytes` relayed from it per `window_s`."""

    def __init__(self, config: CircuitConfig) -> None:
        self._config = config
        self._usage: dict[IdentityId, _Usage] = {}

    def full(self, member: IdentityId) -> bool:
        """Whether `member` has all the circuits it may have at once."""
        return self._usage.get(member, _Usage()).circuits >= self._config.max_circuits

    def opened(self, *members: IdentityId) -> None:
        """A circuit between `members` opened through us."""
        for member in members:
            self._usage.setdefault(member, _Usage()).circuits += 1

    def charge(self, member: IdentityId, size: int) -> bool:
        """Count `size` bytes relayed from `member`; False when over its window's quota."""
        usage = self._usage.setdefault(member, _Usage())
        now = trio.current_time()
        if now - usage.window_started >= self._config.window_s:
            usage.window_started, usage.bytes = now, 0
        usage.bytes += size
        return usage.bytes <= self._config.max_bytes

    def release(self, *members: IdentityId) -> None:
        """A circuit between `members` closed."""
        for member in members:
            if (usage := self._usage.get(member)) is not None:
                usage.circuits = max(0, usage.circuits - 1)


def _over_a_circuit(stream: trio.abc.Stream) -> bool:
    """Whether `stream` (a session's, maybe a secure channel) runs over a circuit."""
    layer: object = stream
    while isinstance(layer, trio.abc.Stream):
        if isinstance(layer, CircuitStream):
            return True
        layer = getattr(layer, "transport_stream", None)
    return False


class CircuitStream(PeerStream):
    """One end of a circuit as a byte stream: what the end-to-end handshake runs on.

    `peer` is the relay's identity until the handshake inside names the far end
    (the secure stream on top carries that one)."""

    def __init__(self, circuits: Circuits, relay: IdentityId, circuit: bytes) -> None:
        self.peer = relay
        self.remote = f"circuit-via-{short_identity_text(relay)}"  # no host: never dialled back
        self._circuits = circuits
        self.relay = relay
        self.circuit = circuit
        self._buffer = bytearray()
        self._arrived = trio.Event()
        self._eof = False
        self._closed = False

    def feed(self, data: bytes) -> bool:
        """Bytes from the far end; False when too much is unread (close the circuit)."""
        self._buffer += data
        self._arrived.set()
        return len(self._buffer) <= self._circuits.config.max_buffered_bytes

    def end(self) -> None:
        """The far end (or the relay) closed the circuit."""
        self._eof = True
        self._arrived.set()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or self._eof:
            raise trio.ClosedResourceError("the circuit is closed")
        view = bytes(data)
        for start in range(0, len(view), MAX_CIRCUIT_DATA):
            chunk = view[start : start + MAX_CIRCUIT_DATA]
            await self._circuits.send_to(self.relay, CircuitData(circuit=self.circuit, data=chunk))
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while not self._buffer and not self._eof:
            if self._closed:
                raise trio.ClosedResourceError("the circuit is closed")
            self._arrived = trio.Event()
            await self._arrived.wait()
        size = len(self._buffer) if max_bytes is None else max_bytes
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        await trio.lowlevel.checkpoint()
        return data

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._circuits.close_end(self, code="closed")
        await trio.lowlevel.checkpoint()


class Circuits:
    """Opens circuits through relays, accepts those opened to us, and relays for others."""

    def __init__(
        self,
        *,
        identity_key: IdentityKey,
        community: Community,
        allowed: Callable[[IdentityId], bool],
        rng: random.Random,
        config: CircuitConfig = CircuitConfig(),  # frozen: shared safely
        targets: Callable[[], Sequence[IdentityId]] | None = None,
    ) -> None:
        """`targets` names members we want a session with: those we are not
        connected to are tried through our relays now and then (`run`)."""
        self._targets = targets
        self._key = identity_key
        self._community = community
        self._allowed = allowed
        self._rng = rng
        self.config = config
        self._links: dict[IdentityId, Send] = {}  # connected peers that name `circuit`
        self._routes: dict[tuple[IdentityId, bytes], tuple[IdentityId, bytes]] = {}
        self._quotas = RelayQuotas(config)
        self._ends: dict[tuple[IdentityId, bytes], CircuitStream] = {}
        self._gossip: _Gossip | None = None
        self._nursery: trio.Nursery | None = None
        self._tried: set[IdentityId] = set()  # targets tried since the relays last changed
        # Linked peers whose session itself runs over a circuit: never a hop of another
        # circuit (nested circuits would pay every byte twice through the same relays).
        self._relayed_links: set[IdentityId] = set()
        self.relayed_bytes = 0
        self.refused = 0  # circuits refused, closed over quota
        self.relay_tap: Callable[[bytes], None] | None = None  # tests: what a relay forwards

    @property
    def relays_in_use(self) -> int:
        """Distinct relays carrying circuits that end here (`status`: reached through N)."""
        return len({relay for relay, _ in self._ends})

    def attach(self, gossip: _Gossip) -> None:
        """Take `gossip`'s circuit messages, name `circuit` in its hello, and run
        sessions of circuits opened to us on it."""
        gossip.extensions.append(self)
        if CAPABILITY not in gossip.capabilities:
            gossip.capabilities = (*gossip.capabilities, CAPABILITY)
        self._gossip = gossip

    async def run(self) -> None:
        """Serve circuits opened to us, and reach `targets` through relays, until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            next_round = trio.current_time() + self._round_wait()
            while True:
                await trio.sleep(min(self.config.notice_s, self.config.reach_interval_s))
                if trio.current_time() >= next_round:
                    next_round = trio.current_time() + self._round_wait()
                    self._reach_targets(nursery, only_new=False)
                else:
                    self._reach_targets(nursery, only_new=True)

    def _round_wait(self) -> float:
        return self.config.reach_interval_s * self._rng.uniform(0.5, 1.0)

    def _reach_targets(self, nursery: trio.Nursery, *, only_new: bool) -> None:
        """Try members we lack through each relay we have: one that is not connected
        to the target answers `no_route` at once, so this costs a message each.

        Between full rounds (`only_new`), only targets not tried since our relays
        last changed: a member we just vouched for, or every target once a new relay
        greets us, is tried within `notice_s` instead of a minute later."""
        if self._targets is None or self._gossip is None:
            return
        connected = set(self._gossip.peers)
        wanted = [t for t in self._targets() if t not in connected and t != self._key.identity]
        if only_new:
            wanted = [t for t in wanted if t not in self._tried]
        for target in self._rng.sample(wanted, min(len(wanted), self.config.reach_per_round)):
            self._tried.add(target)
            nursery.start_soon(self._try_relays, target)

    async def _try_relays(self, target: IdentityId) -> None:
        assert self._gossip is not None
        for relay in sorted(set(self._links) - self._relayed_links):
            if relay == target or target in self._gossip.peers:
                return
            try:
                secure = await self.open(relay, target)
            except (RemoteProtocolError, HandshakeTimeoutError, *_GONE):
                continue  # no route there, refused, over quota: the next relay
            await self._gossip.run_session(secure, initiator=True)
            return

    @property
    def relays(self) -> list[IdentityId]:
        """Peers we could open circuits through: linked directly, naming `circuit`."""
        return sorted(set(self._links) - self._relayed_links)

    # -- opening ---------------------------------------------------------------------

    async def open(self, relay: IdentityId, target: IdentityId) -> PeerStream:
        """A secure stream to `target` through `relay` (the handshake run end to end).

        Raises:
            trio.BrokenResourceError: the relay is not connected, or refused.
            RemoteProtocolError: the handshake inside failed, or another member answered.
        """
        if relay not in self._links or relay in self._relayed_links:
            raise trio.BrokenResourceError("that relay is not connected (or does not relay)")
        circuit = self._rng.randbytes(CIRCUIT_ID_BYTES)
        stream = CircuitStream(self, relay, circuit)
        self._ends[(relay, circuit)] = stream
        await self.send_to(relay, CircuitOpen(circuit=circuit, peer=target))
        secure = await open_secure_stream(
            stream, role=Role.INITIATOR, community=self._community, identity_key=self._key,
            timeout_s=self.config.handshake_timeout_s,
        )  # fmt: skip
        if secure.peer != target:
            await trio.aclose_forcefully(secure)
            raise trio.BrokenResourceError("the circuit reached another member")
        return secure

    async def connect_through(self, relay: IdentityId, target: IdentityId) -> bool:
        """Open a circuit to `target` through `relay` and run a gossip session on it
        until it ends; what `run_session` returns."""
        assert self._gossip is not None
        secure = await self.open(relay, target)
        return await self._gossip.run_session(secure, initiator=True)

    # -- hooks from the gossip session ----------------------------------------------------

    def greeted(self, peer: IdentityId, capabilities: tuple[str, ...],
                stream: trio.abc.Stream, send: Send) -> None:  # fmt: skip
        """A hello: remember peers that speak circuits (as relays or as ends)."""
        if CAPABILITY in capabilities:
            if peer not in self._links:
                self._tried.clear()  # a new relay: each target is worth a try through it
            self._links[peer] = send
            if _over_a_circuit(stream):
                self._relayed_links.add(peer)
            else:
                self._relayed_links.discard(peer)

    def ended(self, peer: IdentityId) -> None:
        """A session ended: its circuits end with it."""
        self._links.pop(peer, None)
        self._relayed_links.discard(peer)
        for key in [k for k in self._ends if k[0] == peer]:
            self._ends.pop(key).end()
        for key in [k for k in self._routes if k[0] == peer]:
            other = self._routes.pop(key)
            self._routes.pop(other, None)
            self._quotas.release(peer, other[0])
            self._spawn(self._send_close, other, "gone")

    @staticmethod
    def handles(message: Message) -> bool:
        """Whether `message` is a circuit message."""
        return isinstance(message, CircuitOpen | CircuitData | CircuitClose)

    async def receive(self, peer: IdentityId, message: Message,
                      stream: trio.abc.Stream, send: Send) -> None:  # fmt: skip
        """A circuit message from `peer`."""
        del stream, send
        if isinstance(message, CircuitOpen):
            await self._on_open(peer, message)
        elif isinstance(message, CircuitData):
            await self._on_data(peer, message)
        elif isinstance(message, CircuitClose):
            await self._on_close(peer, message)

    # -- the three messages ---------------------------------------------------------------

    async def _on_open(self, peer: IdentityId, message: CircuitOpen) -> None:
        key = (peer, message.circuit)
        if key in self._ends or key in self._routes:
            return  # a repeated open: the circuit exists
        if message.peer == self._key.identity:  # opened to us, through `peer`
            if len(self._ends) >= self.config.max_ends or self._nursery is None:
                await self._send_close(key, "quota")
                return
            stream = CircuitStream(self, peer, message.circuit)
            self._ends[key] = stream
            self._nursery.start_soon(self._serve, stream)
            return
        target = IdentityId(message.peer)
        refusal = self._refusal(peer, target)
        if refusal is not None:
            self.refused += 1
            await self._send_close(key, refusal)
            return
        onward = (target, self._rng.randbytes(CIRCUIT_ID_BYTES))
        self._routes[key] = onward
        self._routes[onward] = key
        self._quotas.opened(peer, target)
        await self.send_to(target, CircuitOpen(circuit=onward[1], peer=target))

    def _refusal(self, peer: IdentityId, target: IdentityId) -> str | None:
        """Why we do not relay from `peer` to `target`, or None: we relay."""
        if not self.config.relay or not (self._allowed(peer) and self._allowed(target)):
            return "refused"
        if target not in self._links or {peer, target} & self._relayed_links:
            return "no_route"
        if self._quotas.full(peer) or self._quotas.full(target):
            return "quota"
        return None

    async def _on_data(self, peer: IdentityId, message: CircuitData) -> None:
        key = (peer, message.circuit)
        if (end := self._ends.get(key)) is not None:
            if not end.feed(message.data):
                await self.close_end(end, code="quota")
            return
        onward = self._routes.get(key)
        if onward is None:
            return  # closed a moment ago: what was in flight is dropped
        if not self._quotas.charge(peer, len(message.data)):
            self.refused += 1
            log.info("circuit of %s closed: over its relay quota", short_identity_text(peer))
            self._drop_route(key)
            await self._send_close(key, "quota")
            await self._send_close(onward, "quota")
            return
        self.relayed_bytes += len(message.data)
        if self.relay_tap is not None:
            self.relay_tap(message.data)
        await self.send_to(onward[0], CircuitData(circuit=onward[1], data=message.data))

    async def _on_close(self, peer: IdentityId, message: CircuitClose) -> None:
        key = (peer, message.circuit)
        if (end := self._ends.pop(key, None)) is not None:
            end.end()
            return
        onward = self._routes.get(key)
        if onward is not None:
            self._drop_route(key)
            await self._send_close(onward, message.code)

    # -- helpers ---------------------------------------------------------------------------

    def _drop_route(self, key: tuple[IdentityId, bytes]) -> None:
        onward = self._routes.pop(key, None)
        if onward is not None:
            self._routes.pop(onward, None)
            self._quotas.release(key[0], onward[0])

    async def send_to(self, peer: IdentityId, message: Message) -> None:
        """Send on our session with `peer`.

        Raises:
            trio.BrokenResourceError: no session with it (it went away).
        """
        send = self._links.get(peer)
        if send is None:
            raise trio.BrokenResourceError("no session with that member")
        await send(message)

    async def _send_close(self, key: tuple[IdentityId, bytes], code: str) -> None:
        with contextlib.suppress(*_GONE):
            await self.send_to(key[0], CircuitClose(circuit=key[1], code=code))

    def _spawn(self, function: Callable[..., Awaitable[None]], *args: object) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(function, *args)

    async def close_end(self, end: CircuitStream, *, code: str) -> None:
        """Close our end of a circuit (and tell the relay)."""
        key = (end.relay, end.circuit)
        if self._ends.pop(key, None) is not None:
            await self._send_close(key, code)
        end.end()

    async def _serve(self, stream: CircuitStream) -> None:
        """A circuit opened to us: the handshake inside, then a gossip session."""
        try:
            secure = await open_secure_stream(
                stream, role=Role.RESPONDER, community=self._community, identity_key=self._key,
                timeout_s=self.config.handshake_timeout_s,
            )  # fmt: skip
        except (RemoteProtocolError, HandshakeTimeoutError, *_GONE) as error:
            log.info("a circuit through %s failed its handshake: %s",
                     short_identity_text(stream.relay), error)  # fmt: skip
            return
        assert self._gossip is not None
        await self._gossip.run_session(secure, initiator=False)
