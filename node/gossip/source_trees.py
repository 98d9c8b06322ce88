"""Each issuer's own shortest-path tree (SPEC §9.4): the I/O around `protocol.routes`.

Where both sides of a link said `routes` in hello, neighbours tell each other
their distances to issuers (distance vector), and each issuer's attestations
travel down that issuer's own tree instead of the shared push tree: as few
hops as a flood, one copy per member. `protocol.routes.RouteTable` decides,
sans I/O; this module sends what changed to each neighbour, at most once per
`route_delay_s` per link, and bounds what a peer may make us process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import trio

from node.gossip.session import PeerSession, ReceiveBudget
from protocol.identity import IdentityId
from protocol.routes import RouteTable, decode_routes, encode_routes
from protocol.wire import MAX_WANT_IDS, Routes

__all__ = ["SourceTrees"]

# Route entries a peer may make us process (SPEC §9.4): a whole table of the
# largest size at once, then a steady trickle; beyond it we stop reading from it.
_ROUTE_ENTRIES_PER_S = 20_000
_ROUTE_ENTRIES_BURST = 2 * 65_536


class SourceTrees:
    """Our route table, and telling the neighbours that speak `routes` what changed in it."""

    def __init__(
        self,
        peers: Mapping[IdentityId, PeerSession],
        *,
        identity: IdentityId | None,
        route_delay_s: float,
    ) -> None:
        self.routes = RouteTable(identity)  # distances to issuers, by neighbour
        self.entries_received = 0  # route entries peers sent us
        self._peers = peers  # the node's live sessions (owned by GossipNode)
        self._route_delay_s = route_delay_s

    def start(self, peer: PeerSession) -> None:
        """The peer's hello said `routes`: the link starts from our whole table."""
        # A new connection (or one replacing another) starts from our whole table.
        self.routes.remove_peer(peer.identity)
        self.routes.add_peer(peer.identity)
        peer.routes = True
        peer.route_budget = ReceiveBudget(rate=_ROUTE_ENTRIES_PER_S, burst=_ROUTE_ENTRIES_BURST)
        self.changed()

    def stop(self, identity: IdentityId) -> None:
        """The link is gone: find routes around it."""
        self.routes.remove_peer(identity)
        self.changed()

    async def receive(self, peer: PeerSession, message: Routes) -> None:
        """Take a neighbour's route changes, within its budget of entries."""
        assert peer.route_budget is not None  # set by start(), the only way in
        routes = decode_routes(message.entries)
        await peer.route_budget.take(len(routes))
        self.entries_received += len(routes)
        self.routes.receive(peer.identity, routes)
        self.changed()

    def changed(self) -> None:
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
                    peer.nursery.start_soon(self._flush, peer, wait)

    async def _flush(self, peer: PeerSession, wait: float) -> None:
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
