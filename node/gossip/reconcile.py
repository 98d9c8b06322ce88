"""Reconciliation sessions (SPEC §13): the I/O around `protocol.sync.Reconciler`.

The dialling side of a connection starts a set reconciliation over the
(issued_at, id) pairs of its store on connect, and again every resync
interval (anti-entropy: it repairs whatever pushes missed). What a side
learns the peer lacks it sends as records (`deliver`, through the push
shell); what it lacks and was not sent it fetches (`want`) when the session
ends. A session longer than `max_sync_rounds`, or one started too soon after
the last, is a protocol error. Sketches over our whole set are built with
numpy (node/gossip/sketch_fast), the reference's tables at numpy's speed.
"""

from __future__ import annotations

import trio

from node.gossip.push import PushShell
from node.gossip.session import PeerSession
from node.gossip.sketch_fast import NumpySketchBuilder
from node.gossip.stores import StoreAccess, all_items, envelopes
from protocol.errors import Reason, RemoteProtocolError
from protocol.identity import IdentityId
from protocol.sync import Reconciler
from protocol.wire import MAX_WANT_IDS, Sync, Want

__all__ = ["Reconciliation"]


class Reconciliation:
    """Runs the sync sessions of every connection, one at a time per connection."""

    def __init__(
        self,
        *,
        store: StoreAccess,
        push: PushShell,
        min_session_interval_s: float,
        max_sync_rounds: int,
    ) -> None:
        self._store = store
        self._push = push  # answers travel as records, like a graft's
        self._min_session_interval_s = min_session_interval_s
        self._max_sync_rounds = max_sync_rounds
        self.sync_bytes_sent = 0  # reconciliation payloads (SPEC §13), not the records
        self.last_sync_at: dict[IdentityId, float] = {}  # trio time each peer's last session ended

    async def start(self, peer: PeerSession) -> None:
        """Open a session with `peer` unless one is in progress (we dialled it)."""
        if peer.reconciler is None:
            peer.reconciler = await self._new_reconciler(peer)
            await self._send_sync(peer, peer.reconciler.initiate())

    async def on_sync(self, peer: PeerSession, payload: bytes | None) -> None:
        """A `sync` message: answer its round; at the session's end, fetch what we lack."""
        if payload is None:
            await self._send_wants(peer)
            return
        if peer.reconciler is None:
            # A new session reads our whole id list: a peer may not start them back
            # to back (anti-entropy needs one per resync interval).
            now = trio.current_time()
            if now - peer.last_session_started < self._min_session_interval_s:
                raise RemoteProtocolError(Reason.OUT_OF_RANGE, "sync sessions too frequent")
            peer.last_session_started = now
            peer.reconciler = await self._new_reconciler(peer)
        if peer.reconciler.rounds >= self._max_sync_rounds:
            raise RemoteProtocolError(Reason.OUT_OF_RANGE, "sync session over the round limit")
        reply = peer.reconciler.receive(payload)
        await self._send_sync(peer, reply)
        if peer.reconciler.have:
            # We answered the peer's id lists by sending the records themselves.
            owed, peer.reconciler.have = sorted(peer.reconciler.have), set()
            await self._push.push(peer, await self._store.run(envelopes(owed)), answer=True)
        if reply is None:
            await self._send_wants(peer)

    async def _send_sync(self, peer: PeerSession, payload: bytes | None) -> None:
        self.sync_bytes_sent += len(payload or b"")
        await peer.send(Sync(payload=payload))

    async def _new_reconciler(self, peer: PeerSession) -> Reconciler:
        """A session over our whole set, in the forms the peer speaks."""
        items = await self._store.run(all_items)
        # Sketches over our whole set: numpy builds the reference's tables (sketch_fast).
        return Reconciler(
            items,
            push_missing=True,
            compact=peer.compact_sync,
            sketch=peer.sketch_sync,
            sketch_builder=NumpySketchBuilder(),
        )

    async def _send_wants(self, peer: PeerSession) -> None:
        if peer.reconciler is None:
            return
        self.last_sync_at[peer.identity] = trio.current_time()
        wanted = sorted(peer.reconciler.need)
        peer.reconciler = None
        for start in range(0, len(wanted), MAX_WANT_IDS):
            await peer.send(Want(ids=tuple(wanted[start : start + MAX_WANT_IDS])))
