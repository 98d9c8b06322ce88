"""Peer exchange on a session (wire `peers`, SPEC §9): the dialler shuffles, we answer.

Addresses come from and go to a `PeerExchange` (the peer manager,
node/gossip/peers): what it samples we tell a peer, on connect and with
every anti-entropy round of a link we dialled; what a peer tells us is
hearsay it learns, to try later. Without a `PeerExchange` (a bare
`GossipNode`) no addresses travel.
"""

from __future__ import annotations

from typing import Protocol

from node.gossip.session import PeerSession
from protocol.identity import IdentityId
from protocol.wire import MAX_PEER_ADDRESSES, Peers

__all__ = ["AddressSharing", "PeerExchange"]


class PeerExchange(Protocol):
    """Where addresses from and for peer exchange (wire `peers`) come and go."""

    def sample(self) -> tuple[str, ...]:
        """Addresses to tell a peer about (our own first, if we listen)."""
        ...

    def learn(self, addresses: tuple[str, ...], *, source: IdentityId) -> None:
        """Addresses a peer told us about: hearsay, to try later."""
        ...


class AddressSharing:
    """Sends and takes `peers` messages for the `PeerExchange` set on it."""

    def __init__(self) -> None:
        self.source: PeerExchange | None = None  # set by the peer manager

    async def share(self, peer: PeerSession) -> None:
        """Tell `peer` some addresses (none without a source)."""
        if self.source is not None:
            await peer.send(Peers(addresses=self.source.sample()[:MAX_PEER_ADDRESSES]))

    async def on_peers(self, peer: PeerSession, addresses: tuple[str, ...]) -> None:
        """A peer's `peers`: learn them; a peer that dialled us hears ours back."""
        if self.source is not None:
            self.source.learn(addresses, source=peer.identity)
            if not peer.dialled:
                await self.share(peer)  # the dialler shuffles; we answer
