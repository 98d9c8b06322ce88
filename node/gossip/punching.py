"""Hole punching (SPEC §15.4): move a relayed session to a direct TCP connection.

Two members in session over a circuit (SPEC §15.3) that both name `punch`
agree, over that end-to-end session, on a moment to connect to each other at
once (`protocol.punch`: the smaller identity initiates; Connect, Connect,
Sync with the round trip measured), and each then dials the other's router
from its own listening port (`node.net.punch.simultaneous_open`). When the
SYNs cross, both NATs let the connection through. The handshake (SPEC §10)
then runs on it with fixed roles - the smaller identity is the initiator - so
both agree without a word, and only the identity that the punch was with is
accepted. Where nothing between them drops a SYN (no NAT, or a router that lets
it in), the first SYN reaches the other side's listener rather than its dialling
socket: the listener (`node.net.punch.PunchListener`) hands a connection from an
address the round expects to `claim`, and the round runs the same handshake on
it, so whichever socket connected, the roles agree.

The session runs as the one dialled by the smaller identity, so `GossipNode` on
both sides keeps it and ends the relayed one (SPEC §11's rule): the push tree
and reconciliation see a new session to the same peer, the circuit closes, and
nothing is lost that anti-entropy would not bring again.

This module is the I/O shell: it feeds hellos, punch messages and dial
results to `protocol.punch.Punches` and carries out what that returns.
Everything a peer sends stays hearsay until a handshake on the direct
connection proves the peer: the coordinator dials only plausible addresses,
within per-peer and per-host budgets.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import trio

from node.gossip.circuits import CircuitStream
from node.net.addresses import host_of
from node.net.punch import remote_address, simultaneous_open
from node.net.transport import HandshakeTimeoutError, PeerStream, open_secure_stream
from protocol.channel import Community
from protocol.errors import RemoteProtocolError
from protocol.handshake import Role
from protocol.identity import IdentityId, IdentityKey, short_identity_text
from protocol.punch import (
    Dial,
    Finished,
    Outcome,
    PunchConfig,
    PunchError,
    Punches,
    SendConnect,
    SendSync,
)
from protocol.wire import PUNCH_NONCE_BYTES, Message, PunchConnect, PunchSync

__all__ = ["CAPABILITY", "Opener", "PunchStatistics", "Punching", "is_relayed"]

CAPABILITY = "punch"
log = logging.getLogger("trustnode.punch")
Send = Callable[[Message], Awaitable[None]]
Opener = Callable[..., Awaitable[trio.abc.Stream]]  # simultaneous_open's signature
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError)
# After every address's dial failed, how long a round still waits for the peer's
# connection to reach our listener: accepted there, it is why our connect failed
# (the 4-tuple is taken), so it is in the accept queue already; 0.5 s is slack.
_ARRIVAL_GRACE_S = 0.5


def is_relayed(stream: trio.abc.Stream) -> bool:
    """Whether `stream` (a session's, maybe a secure channel) runs over a circuit."""
    layer: object = stream
    while isinstance(layer, trio.abc.Stream):
        if isinstance(layer, CircuitStream):
            return True
        layer = getattr(layer, "transport_stream", None)
    return False


class _Gossip(Protocol):
    extensions: list[Any]
    capabilities: tuple[str, ...]

    async def run_session(
        self, stream: PeerStream, *, initiator: bool, lazy: bool = False
    ) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PunchStatistics:
    """What `trustnode status` and the metrics show of punching."""

    attempts: int  # rounds dialled
    successes: int  # punches that ended in a direct session
    direct: int  # punched sessions running now
    # Each peer of a running punched session: seconds from its relayed session's
    # hello to the direct one.
    time_to_direct_s: tuple[tuple[IdentityId, float], ...]


class Punching:
    """Coordinates punches with peers over circuits, dials, and hands the direct
    session to the gossip layer."""

    def __init__(
        self,
        *,
        identity_key: IdentityKey,
        community: Community,
        listen_port: int,
        addresses: Callable[[], Sequence[str]],
        rng: random.Random,
        config: PunchConfig | None = None,
        handshake_timeout_s: float = 10.0,
        opener: Opener = simultaneous_open,
    ) -> None:
        """`addresses` are ours worth telling (observed and confirmed, SPEC §15.2);
        `opener` is `simultaneous_open` (tests pass a fake with its signature)."""
        self._key = identity_key
        self._community = community
        self._port = listen_port
        self._addresses = addresses
        self._rng = rng
        self._timeout_s = handshake_timeout_s
        self._open = opener
        self.punches = Punches(identity=identity_key.identity, config=config or PunchConfig())
        self._sends: dict[IdentityId, Send] = {}  # peers over a circuit that name `punch`
        self._relayed_since: dict[IdentityId, float] = {}
        self._dials: dict[IdentityId, trio.CancelScope] = {}  # one dial per peer at once
        self._punched: set[IdentityId] = set()  # whose current session we punched
        # Connections our listener accepted from an address a round expects
        # (`claim`): at most one per peer, until its round takes or drops it.
        self._arrivals: dict[IdentityId, trio.abc.Stream] = {}
        self._arrived: dict[IdentityId, trio.Event] = {}
        # Kept while the punched session runs (statistics shows no other): at most one
        # figure per live session, not one per peer ever punched.
        self.time_to_direct_s: dict[IdentityId, float] = {}
        self._gossip: _Gossip | None = None
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()

    def attach(self, gossip: _Gossip) -> None:
        """Take `gossip`'s punch messages, name `punch` in its hello, and run the
        direct sessions on it."""
        gossip.extensions.append(self)
        if CAPABILITY not in gossip.capabilities:
            gossip.capabilities = (*gossip.capabilities, CAPABILITY)
        self._gossip = gossip

    def statistics(self) -> PunchStatistics:
        """Counts so far."""
        return PunchStatistics(
            attempts=self.punches.attempts,
            successes=self.punches.successes,
            direct=len(self._punched),
            time_to_direct_s=tuple(sorted(self.time_to_direct_s.items())),
        )

    async def run(self) -> None:
        """Drive the coordinator's clock until cancelled (after `attach`)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                while True:
                    self._wake = trio.Event()
                    self._drop_stale_arrivals()
                    self._act(self.punches.poll(now=trio.current_time(), nonce=self._nonce,
                                                ours=self._addresses), wake=False)  # fmt: skip
                    deadline = self.punches.next_deadline()
                    with trio.move_on_at(float("inf") if deadline is None else deadline):
                        await self._wake.wait()
        finally:
            self._nursery = None  # `claim` takes nothing more
            while self._arrivals:  # claimed, never taken by a round
                await trio.aclose_forcefully(self._arrivals.popitem()[1])

    def claim(self, stream: trio.abc.Stream) -> bool:
        """Take `stream`, which our listener accepted, when it comes from an address
        that a punch round expects (`node.net.punch.PunchListener`): the round runs
        the handshake on it with the roles fixed by identity, as on a dialled one.
        Whether we took it (then we own it); never blocks."""
        address = remote_address(stream)
        if address is None or self._nursery is None:
            return False
        peer = self.punches.expecting(address)
        if peer is None:
            return False
        peer = IdentityId(peer)
        if (old := self._arrivals.pop(peer, None)) is not None:
            self._spawn(trio.aclose_forcefully, old)  # one per peer: the newest
        self._arrivals[peer] = stream
        if (event := self._arrived.pop(peer, None)) is not None:
            event.set()
        log.debug("punch with %s: its connection reached our listener",
                  short_identity_text(peer))  # fmt: skip
        return True

    def _drop_stale_arrivals(self) -> None:
        """Close what arrived for a round that ended without taking it (a dial under
        way may still take it: its relayed session may end first, see `ended`)."""
        stale = [p for p in self._arrivals if not self.punches.expected_from(p)]
        for peer in [p for p in stale if p not in self._dials]:
            self._spawn(trio.aclose_forcefully, self._arrivals.pop(peer))

    def _nonce(self) -> bytes:
        return self._rng.randbytes(PUNCH_NONCE_BYTES)

    # -- hooks from the gossip session ------------------------------------------------

    def greeted(self, peer: IdentityId, capabilities: tuple[str, ...],
                stream: trio.abc.Stream, send: Send) -> None:  # fmt: skip
        """A hello: a relayed peer that names `punch` is worth a punch; any other
        session with it (a direct one) ends what the relayed one had begun."""
        if CAPABILITY in capabilities and is_relayed(stream):
            self._sends[peer] = send
            self._relayed_since.setdefault(peer, trio.current_time())
            self.punches.open_link(peer)
            self._wake.set()
        elif self._sends.pop(peer, None) is not None:
            self._act(self.punches.close_link(peer))

    def ended(self, peer: IdentityId) -> None:
        """The current session with `peer` ended (a replaced one is not told)."""
        self._sends.pop(peer, None)
        self._relayed_since.pop(peer, None)
        self._act(self.punches.close_link(peer))
        self._drop_stale_arrivals()
        if peer in self._punched:
            self._punched.discard(peer)
            self.time_to_direct_s.pop(peer, None)
            self.punches.direct_ended(peer, now=trio.current_time())
        # A dial under way goes on: the far end, done first, may have replaced the
        # relayed session, which is why it ended (the dial is bounded anyway).

    @staticmethod
    def handles(message: Message) -> bool:
        """Whether `message` is a punch message."""
        return isinstance(message, PunchConnect | PunchSync)

    async def receive(self, peer: IdentityId, message: Message,
                      stream: trio.abc.Stream, send: Send) -> None:  # fmt: skip
        """A punch message from `peer`: only over a circuit, after its hello named
        `punch` (else ignored); a refused one is logged, the session goes on."""
        del send
        await trio.lowlevel.checkpoint()
        if not isinstance(message, PunchConnect | PunchSync) or not is_relayed(stream):
            return
        try:
            actions = self.punches.receive(peer, message, now=trio.current_time(),
                                           ours=self._addresses)  # fmt: skip
        except PunchError as error:
            log.info("punch with %s refused: %s (%s)", short_identity_text(peer),
                     error.reason.value, error)  # fmt: skip
            return
        self._act(actions)

    # -- carrying out what the coordinator says -----------------------------------------

    def _act(self, actions: Sequence[object], *, wake: bool = True) -> None:
        """Carry out `actions`; `wake` the clock loop, since the coordinator's next
        deadline may have moved even when there is nothing to do now (a failed
        round's backoff is shorter than the dial bound it was waiting on)."""
        for action in actions:
            if isinstance(action, SendConnect | SendSync):
                self._spawn(self._send, IdentityId(action.peer), action.message)
            elif isinstance(action, Dial):
                self._start_dial(action)
            elif isinstance(action, Finished):
                self._finished(action)
        if wake:
            self._wake.set()

    def _spawn(self, function: Callable[..., Awaitable[None]], *args: object) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(function, *args)

    async def _send(self, peer: IdentityId, message: Message) -> None:
        if (send := self._sends.get(peer)) is not None:
            with contextlib.suppress(*_GONE):
                await send(message)

    def _finished(self, finished: Finished) -> None:
        peer = IdentityId(finished.peer)
        if finished.outcome is Outcome.NO_ADDRESS and not finished.rounds:
            log.debug("punch with %s: nothing to dial yet", short_identity_text(peer))
        elif finished.outcome is not Outcome.DIRECT:
            log.info("punch with %s: %s after %d round(s); the session stays relayed",
                     short_identity_text(peer), finished.outcome.value,
                     finished.rounds)  # fmt: skip

    def _start_dial(self, dial: Dial) -> None:
        peer = IdentityId(dial.peer)
        if (old := self._dials.pop(peer, None)) is not None:
            old.cancel()  # a new round: the last one's dial is over
        scope = trio.CancelScope()
        self._dials[peer] = scope
        self._spawn(self._dial_and_serve, dial, scope)

    async def _dial_and_serve(self, dial: Dial, scope: trio.CancelScope) -> None:
        peer = IdentityId(dial.peer)
        secure: PeerStream | None = None
        with scope:
            secure = await self._connect(dial)
        if self._dials.get(peer) is scope:
            del self._dials[peer]
        actions = self.punches.dialled(
            peer, dial.nonce, now=trio.current_time(), direct=secure is not None
        )
        self._act(actions)
        if secure is None:
            return
        won = any(isinstance(a, Finished) and a.outcome is Outcome.DIRECT for a in actions)
        if not won or self._gossip is None:  # a later round took over meanwhile
            await trio.aclose_forcefully(secure)
            return
        self._punched.add(peer)
        since = self._relayed_since.pop(peer, None)
        if since is not None:
            self.time_to_direct_s[peer] = trio.current_time() - since
        log.info("peer %s: direct session after a punch (%d round(s) dialled so far)",
                 short_identity_text(peer), self.punches.attempts)  # fmt: skip
        initiator = self._key.identity < peer  # the smaller identity's dial wins (SPEC §11)
        if not await self._gossip.run_session(secure, initiator=initiator):
            # Refused at once (a ban): `ended` is not told of a session never admitted.
            self._punched.discard(peer)
            self.time_to_direct_s.pop(peer, None)
            self.punches.direct_ended(peer, now=trio.current_time())

    async def _connect(self, dial: Dial) -> PeerStream | None:
        """A simultaneous open to any of `dial.addresses`, then the handshake with
        the roles fixed by identity; the secure stream when it proves the peer."""
        stream = await self._first_open(dial)
        if stream is None:
            return None
        peer = IdentityId(dial.peer)
        role = Role.INITIATOR if self._key.identity < peer else Role.RESPONDER
        try:
            secure = await open_secure_stream(
                stream, role=role, community=self._community, identity_key=self._key,
                timeout_s=self._timeout_s,
            )  # fmt: skip
        except (RemoteProtocolError, HandshakeTimeoutError, *_GONE) as error:
            log.info("punched connection to %s failed its handshake: %s",
                     short_identity_text(peer), error)  # fmt: skip
            return None
        if secure.peer != peer:  # the address reached another member: not ours to keep
            log.info("punched connection for %s proved %s instead: closed",
                     short_identity_text(peer), short_identity_text(secure.peer))  # fmt: skip
            await trio.aclose_forcefully(secure)
            return None
        return secure

    async def _first_open(self, dial: Dial) -> trio.abc.Stream | None:
        """Dial every address at once from our port, and take the peer's connection
        if our listener accepts it instead (`claim`); the first that connects."""
        peer = IdentityId(dial.peer)
        won: list[trio.abc.Stream] = []
        async with trio.open_nursery() as nursery:

            async def take(stream: trio.abc.Stream) -> None:
                if won:
                    await trio.aclose_forcefully(stream)
                    return
                won.append(stream)
                nursery.cancel_scope.cancel()

            async def one(address: str) -> None:
                host = host_of(address)
                assert host is not None  # the coordinator dials plausible addresses only
                port = int(address.rpartition(":")[2])
                try:
                    stream = await self._open(self._port, (host, port), start_at=dial.at)
                except OSError:
                    return
                await take(stream)

            async def dial_all() -> None:
                async with trio.open_nursery() as dials:
                    for address in dial.addresses:
                        dials.start_soon(one, address)
                await trio.sleep(_ARRIVAL_GRACE_S)  # the peer's may still reach our listener
                nursery.cancel_scope.cancel()

            async def arrival() -> None:
                while (stream := self._arrivals.pop(peer, None)) is None:
                    event = self._arrived.setdefault(peer, trio.Event())
                    await event.wait()
                await take(stream)

            nursery.start_soon(dial_all)
            nursery.start_soon(arrival)
        return won[0] if won else None
