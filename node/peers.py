"""Keeping connections: dial known addresses, reconnect with jittered back-off, serve inbound.

A first cut of the peer manager of issue #5: it holds a set of known
addresses (from configuration or invites), keeps at most `max_active`
outbound connections, and redials a lost one after an exponential back-off
with random jitter (so a restarted community does not reconnect in lockstep).
Inbound connections are served by `serve_secure` under its limits. Both run
the same gossip session; an identity already connected is not dialled twice.
Peer exchange, random replacement in the active view (HyParView) and scoring
come later.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from node.gossip import GossipNode
from node.transport import (
    DEFAULT_LIMITS,
    HandshakeTimeoutError,
    SecureStream,
    TransportLimits,
    open_secure_stream,
    serve_secure,
)
from protocol.channel import Community
from protocol.errors import RemoteProtocolError
from protocol.handshake import Role
from protocol.identity import IdentityKey

__all__ = ["Dialer", "PeerManager", "PeerManagerConfig"]

Dialer = Callable[[str], Awaitable[trio.abc.Stream]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerManagerConfig:
    """How many peers to keep and how patiently to redial them."""

    max_active: int = 8
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    jitter: float = 0.5  # each wait is multiplied by a factor in [1 - jitter, 1 + jitter]


DEFAULT_CONFIG = PeerManagerConfig()


class PeerManager:
    """Dials and redials known addresses, serves inbound connections, feeds gossip."""

    def __init__(
        self,
        *,
        gossip: GossipNode,
        identity_key: IdentityKey,
        community: Community,
        dial: Dialer,
        rng: random.Random,
        config: PeerManagerConfig = DEFAULT_CONFIG,
        limits: TransportLimits = DEFAULT_LIMITS,
    ) -> None:
        self._gossip = gossip
        self._key = identity_key
        self._community = community
        self._dial = dial
        self._rng = rng
        self._config = config
        self._limits = limits
        self._addresses: list[str] = []
        self._changed = trio.Event()
        self.dial_failures = 0

    def add_address(self, address: str) -> None:
        """Learn an address to keep a connection to (bootstrap, invite)."""
        if address not in self._addresses:
            self._addresses.append(address)
            self._changed.set()

    async def run(self, listener: trio.abc.Listener[trio.abc.Stream] | None = None) -> None:
        """Maintain outbound connections (and serve `listener`) until cancelled."""
        async with trio.open_nursery() as nursery:
            if listener is not None:
                nursery.start_soon(self._serve, listener)
            started: set[str] = set()
            while True:
                for address in self._addresses[: self._config.max_active]:
                    if address not in started:
                        started.add(address)
                        nursery.start_soon(self._keep, address)
                await self._changed.wait()
                self._changed = trio.Event()

    async def _serve(self, listener: trio.abc.Listener[trio.abc.Stream]) -> None:
        async def handler(stream: SecureStream) -> None:
            await self._gossip.run_session(stream, initiator=False)

        await serve_secure(
            listener, handler, community=self._community, identity_key=self._key,
            limits=self._limits,
        )  # fmt: skip

    def _wait_s(self, failures: int) -> float:
        base = min(
            self._config.backoff_initial_s * 2 ** min(failures, 30), self._config.backoff_max_s
        )
        spread = self._config.jitter
        return float(base * self._rng.uniform(1 - spread, 1 + spread))

    async def _keep(self, address: str) -> None:
        """Stay connected to `address`: dial, run the session, back off, repeat."""
        failures = 0
        while True:
            outcome = await self._connect_once(address)
            if outcome == "ran":
                failures = 0  # a session ran; start the back-off afresh
            else:
                # Failed, or that peer is already connected (inbound): wait longer.
                failures += 1
                self.dial_failures += outcome == "failed"
            await trio.sleep(self._wait_s(failures))

    async def _connect_once(self, address: str) -> str:
        try:
            raw = await self._dial(address)
            stream = await open_secure_stream(
                raw, role=Role.INITIATOR, community=self._community, identity_key=self._key,
                timeout_s=self._limits.handshake_timeout_s,
            )  # fmt: skip
        except (OSError, RemoteProtocolError, HandshakeTimeoutError, trio.BrokenResourceError):
            return "failed"
        if stream.peer in self._gossip.peers or stream.peer == self._key.identity:
            await stream.aclose()  # already connected (inbound), or ourselves
            return "duplicate"
        await self._gossip.run_session(stream, initiator=True)
        return "ran"
