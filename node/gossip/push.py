"""The push tree's I/O shell: pushes, announcements, graft timers and prunes (SPEC §9.3).

A new attestation travels along a push tree (Plumtree): pushed on eager
links, announced by id (or 8-byte prefix) on lazy ones, with `prune` and
`graft` keeping the eager links a tree. What to push, announce, graft and
prune is decided by `protocol.pushtree.PushTree`, sans I/O, with time as an
argument; `PushShell` feeds it the events of every session, keeps its time
(a flush task per link, one graft timer task per link, sleeping until the
tree's deadlines) and sends what it decides. Where a link speaks `routes`,
each issuer's attestations follow that issuer's own tree instead
(node/gossip/source_trees): `forward` asks the route table which links are
children.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import trio

from node.gossip.session import PeerSession
from node.gossip.stores import StoreAccess, envelopes, lacking
from protocol.attestation import ID_PREFIX_BYTES, envelope_issuer
from protocol.identity import IdentityId
from protocol.pushtree import Arrivals, PushTree, announcements
from protocol.routes import RouteTable, source_key
from protocol.wire import MAX_PUSH_ENVELOPES, Deliver, Graft, Graft8, Push, Want

__all__ = ["PushShell"]

_MAX_SEEN = 200_000  # ids the tree remembers seeing lately (protocol.pushtree)


class PushShell:
    """Sends what the push tree decides, on every session, and keeps its timers."""

    def __init__(
        self,
        peers: Mapping[IdentityId, PeerSession],
        *,
        store: StoreAccess,
        routes: RouteTable,
        graft_timeout_s: float,
        coalesce_s: float,
        announce_delay_s: float,
    ) -> None:
        # Eager and lazy links, announcements, graft deadlines, prunes (SPEC §9.3):
        # decided there, sans I/O; this class sends what it decides and keeps its time.
        self.tree = PushTree(
            graft_timeout_s=graft_timeout_s,
            coalesce_s=coalesce_s,
            announce_delay_s=announce_delay_s,
            max_seen=_MAX_SEEN,
        )
        self.grafts_sent = 0  # links we asked back into the push tree
        self.announcements_received = 0
        self.announcement_bytes_received = 0  # the ids or prefixes in them
        self._peers = peers  # the node's live sessions (owned by GossipNode)
        self._store = store
        self._routes = routes

    def forward(self, fresh: list[bytes], ids: list[bytes], *, source: IdentityId | None) -> None:
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
                children = self._routes.children(peer.identity, sources, unknown=peer.eager)
            peer.link.owe(fresh, ids, children=children)
            if not peer.flush_scheduled and peer.nursery is not None:
                peer.flush_scheduled = True
                # A session that is ending has closed its nursery: it is owed nothing.
                with contextlib.suppress(RuntimeError):
                    peer.nursery.start_soon(self._flush, peer)

    async def _flush(self, peer: PeerSession) -> None:
        """Forward what accumulated for `peer` while `PushTree.flush_delay` waited:
        a burst of attestations travels in a few large pushes and announcements,
        not one message per attestation per link (Plumtree batches its lazy
        pushes too)."""
        await trio.sleep(self.tree.flush_delay(peer.link, now=trio.current_time()))
        peer.flush_scheduled = False
        pushes, announced = self.tree.flush(peer.link, now=trio.current_time())
        if pushes:
            await self.push(peer, pushes)
        if announced:
            await self._announce(peer, announced)

    async def maybe_prune(self, source: IdentityId, arrivals: Arrivals, *, duplicates: int) -> None:
        """Plumtree's PRUNE, where the tree says a push brought mostly copies."""
        peer = self._peers.get(source)
        if peer is None:
            return
        if (prune := self.tree.judge_push(peer.link, arrivals, duplicates=duplicates)) is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await peer.send(prune)

    async def _announce(self, peer: PeerSession, ids: Sequence[bytes]) -> None:
        for message in announcements(ids, short_ids=peer.short_ids):
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await peer.send(message)

    async def on_ihave(self, peer: PeerSession, ids: tuple[bytes, ...]) -> None:
        """Announced by full id: graft later what we neither saw lately nor hold."""
        self.announcements_received += len(ids)
        self.announcement_bytes_received += len(ids) * len(ids[0])
        unseen = self.tree.unseen_ids(ids)
        missing = await self._store.run(lacking(unseen)) if unseen else []
        if missing:
            self._graft_later(peer, missing, [])

    async def on_ihave8(self, peer: PeerSession, prefixes: list[bytes]) -> None:
        """Announced by prefix: one we saw lately is that attestation; others we
        lack (see `PushTree.unknown_prefixes`)."""
        self.announcements_received += len(prefixes)
        self.announcement_bytes_received += len(prefixes) * ID_PREFIX_BYTES
        unknown = self.tree.unknown_prefixes(prefixes)
        if unknown:
            self._graft_later(peer, [], unknown)

    def _graft_later(self, peer: PeerSession, ids: list[bytes], prefixes: list[bytes]) -> None:
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

    async def _graft_timer(self, peer: PeerSession) -> None:
        try:
            while (deadline := self.tree.graft_deadline(peer.link)) is not None:
                await trio.sleep_until(deadline)
                ids, prefixes = self.tree.due(peer.link, now=trio.current_time())
                await self._graft_due(peer, ids, prefixes)
        finally:
            peer.graft_timer = False

    async def _graft_due(self, peer: PeerSession, ids: list[bytes], prefixes: list[bytes]) -> None:
        """If an announced attestation has not arrived through the tree by now,
        GRAFT (`PushTree.graft`): the store tells which of those not seen lately
        we lack."""
        check = self.tree.graft_check(ids, prefixes, now=trio.current_time())
        unheld = check.unheld
        missing = await self._store.run(lacking(unheld)) if unheld else []
        grafts = self.tree.graft(peer.link, check, missing, speaks_graft=peer.grafts)
        if not grafts:
            return
        self.grafts_sent += 1
        for message in grafts:
            await peer.send(message)

    async def on_request(self, peer: PeerSession, message: Want | Graft | Graft8) -> None:
        """Answer with what we hold; a graft (by ids or prefixes) also rejoins the tree."""
        if isinstance(message, Want):
            ids = list(message.ids)  # a fetch only (anti-entropy, or a peer without `graft`)
        elif isinstance(message, Graft):  # Plumtree's GRAFT: the link rejoins the push tree
            self.tree.on_graft(peer.link)
            ids = list(message.ids)
        else:  # prefixes of what we announced: we saw those lately
            ids = self.tree.on_graft(peer.link, message.split())
        await self.push(peer, await self._store.run(envelopes(ids)), answer=True)

    async def push(
        self, peer: PeerSession, records: Sequence[bytes], *, answer: bool = False
    ) -> None:
        """Send envelopes: forwarded in the push tree, or as an `answer` to a request."""
        kind = Deliver if answer and peer.delivers else Push
        for start in range(0, len(records), MAX_PUSH_ENVELOPES):
            chunk = tuple(records[start : start + MAX_PUSH_ENVELOPES])
            try:
                await peer.send(kind(envelopes=chunk))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # that session is ending; it cleans up after itself
