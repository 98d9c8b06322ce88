"""Storing what peers (and we) bring: verify, admit, store, then forward what is new.

All peer bytes go through `node.store.ingest` (decode, verify, freshness,
relay policy) before they touch the store. Copies of what we stored lately
are answered from the push tree's memory without a store call; what is new
is handed to the push tree (node/gossip/push) to forward, and a push that
brought mostly copies may prune its link. A peer's refused records are
judged by the policy table (node/gossip/policy): the valid part of its
message is kept, and the worst reason it answers for ends (or bans) its
session. The records of a session we dialled (a join, a catch-up) are
checked in a worker thread, or a worker process (node/gossip/signatures),
while the store writes (`verify_ahead`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, MutableMapping, Sequence

import trio

from node.gossip.policy import PEER_POLICY, Action
from node.gossip.push import PushShell
from node.gossip.session import PeerSession
from node.gossip.signatures import SignatureChecker, check_in_thread
from node.gossip.stores import StoreAccess
from node.store import IngestReport, ItemReport, Outcome, ingest
from node.store.pipeline import Admission
from protocol.attestation import Attestation, AttestationId, attestation_id
from protocol.errors import Reason, RemoteProtocolError
from protocol.identity import IdentityId
from protocol.wire import Deliver, Push

__all__ = ["Intake", "complete"]

_INGEST_PART = 200  # envelopes per store call when a peer pushes many
# Records of a session we started are checked ahead and stored in batches of up
# to this many (see Intake._bulk): each store call rewrites the pages its
# random ids touch, so larger batches cost less per record; one holds the store
# for about 0.2 s.
_INTAKE_BATCH = 2000
_SEVERITY_ORDER = {Action.DROP: 0, Action.CLOSE: 1, Action.BAN: 2}

_Checked = tuple[Sequence[bytes], dict[bytes, Attestation]]
_Wait = Callable[[], dict[bytes, Attestation]]
# Deliveries begun (decoded, their checks started) beyond the one being waited
# for: enough that the workers always have the next one in hand.
_CHECKS_AHEAD = 1


def complete(report: IngestReport, envelopes: Sequence[bytes]) -> IngestReport:
    """`report` with an item for every envelope: those it skipped as recent copies are
    duplicates."""
    if len(report.items) == len(envelopes):
        return report
    items = {item.index: item for item in report.items}
    return IngestReport(items=tuple(
        items.get(n) or ItemReport(index=n, outcome=Outcome.DUPLICATE, id=attestation_id(e))
        for n, e in enumerate(envelopes)
    ))  # fmt: skip


def _held(report: IngestReport) -> list[tuple[bytes, bool]]:
    """What the store holds now of a batch (see `PushTree.remember`): (id, held before)."""
    return [
        (bytes(item.id), item.outcome is Outcome.DUPLICATE)
        for item in report.items
        if item.id is not None and item.outcome is not Outcome.REJECTED
    ]


async def _check_each(
    deliveries: trio.MemoryReceiveChannel[Sequence[bytes]],
    checked: trio.MemorySendChannel[_Checked],
    wanted: Callable[[], bool],
    begin: Callable[[Sequence[bytes]], Callable[[], dict[bytes, Attestation]]],
) -> None:
    """Pass each delivery on with its attestations whose signatures verified
    (none checked once `wanted()` says no: `ingest` then checks what it keeps).

    `begin` decodes a delivery and starts its checks; the wait for them runs
    in a second task, so the next delivery is decoded while the workers check
    this one: the workers are not left idle while this process decodes. At
    most `_CHECKS_AHEAD` + 2 deliveries are between `begin` and `checked`.
    """
    begun, waits = trio.open_memory_channel[tuple[Sequence[bytes], _Wait]](_CHECKS_AHEAD)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_wait_each, waits, checked)
        async with deliveries, begun:
            async for envelopes in deliveries:
                wait = await trio.to_thread.run_sync(begin, envelopes) if wanted() else dict
                await begun.send((envelopes, wait))


async def _wait_each(
    waits: trio.MemoryReceiveChannel[tuple[Sequence[bytes], _Wait]],
    checked: trio.MemorySendChannel[_Checked],
) -> None:
    """The second half of `_check_each`: wait for each delivery's checks, in order."""
    async with waits, checked:
        async for envelopes, wait in waits:
            await checked.send((envelopes, await trio.to_thread.run_sync(wait)))


def _checked_now(
    check: Callable[[Sequence[bytes]], dict[bytes, Attestation]],
) -> Callable[[Sequence[bytes]], _Wait]:
    """`check` as a `begin` whose wait has nothing left to do (no worker to overlap)."""

    def begin(envelopes: Sequence[bytes]) -> _Wait:
        found = check(envelopes)
        return lambda: found

    return begin


def _judge(reasons: list[Reason]) -> None:
    """Raise for the worst reason that the peer answers for (node/gossip/policy).

    The valid part of its message was kept.
    """
    reason = max(reasons, key=lambda r: _SEVERITY_ORDER[PEER_POLICY[r]], default=None)
    if reason is not None and PEER_POLICY[reason] is not Action.DROP:
        raise RemoteProtocolError(reason, "peer pushed a refused attestation")


class Intake:
    """Stores batches of envelopes, ours and peers', and passes what is new on."""

    def __init__(
        self,
        *,
        store: StoreAccess,
        push: PushShell,
        wall_clock_ms: Callable[[], int],
        max_skew_ms: int,
        admit: Admission | None,
        verified_cache: MutableMapping[bytes, Attestation] | None,
        verify_ahead: bool,
        signature_checker: SignatureChecker | None,
    ) -> None:
        self._verified_cache = verified_cache  # simulations only: see node.store.ingest
        # Check the signatures of a dialled session's records in a worker thread,
        # ahead of the store (see _bulk). Threads: not on a MockClock. With a
        # `signature_checker`, that thread hands the checks to its worker process.
        self._verify_ahead = verify_ahead and verified_cache is None
        self._signature_checker = signature_checker
        self._store = store
        self._push = push
        self._admit = admit
        self._wall_clock_ms = wall_clock_ms
        self._max_skew_ms = max_skew_ms
        self.stored_from_peers = 0
        self.payload_copies_received = 0
        self.payload_bytes_received = 0
        self._progress = trio.Event()
        self._stored = trio.Event()
        # Called with the ids of each stored batch (simulations record arrival times).
        self.stored_hook: Callable[[list[AttestationId]], None] | None = None
        self.last_stored_at: float | None = None  # trio time of the last stored batch

    @property
    def progress(self) -> trio.Event:
        """Set when the next batch from a peer has been stored."""
        return self._progress

    @property
    def stored_signal(self) -> trio.Event:
        """Set when the next batch (from a peer or local) is stored."""
        return self._stored

    async def ingest(
        self,
        envelopes: Sequence[bytes],
        *,
        source: IdentityId | None,
        now_ms: int | None = None,
        forwarded: bool = False,
        checked: MutableMapping[bytes, Attestation] | None = None,
    ) -> IngestReport:
        """Store what verifies and forward what is new.

        Only copies that `source` `forwarded` in the push tree count towards
        pruning that link: answers to our requests and sync records may well
        be copies (they were in flight when we asked) without the link being
        redundant in the tree. `checked`: envelopes whose signatures this node
        has just checked itself (see _bulk).
        """
        cache = self._verified_cache if checked is None else checked
        now_ms = self._wall_clock_ms() if now_ms is None else now_ms
        # Our own attestations always stay; what peers bring passes the relay policy.
        admit = self._admit if source is not None else None
        # Copies of what we just stored are the common case in gossip: answer them
        # from memory, and let the store see only the rest.
        tree = self._push.tree
        arrivals = tree.arrivals([attestation_id(e) for e in envelopes])
        unseen = arrivals.unseen
        part = [envelopes[n] for n in unseen]
        stored = await self._store.run(
            lambda store: ingest(
                store, part, now_ms=now_ms, max_skew_ms=self._max_skew_ms, admit=admit,
                verified_cache=cache, verifier=self._signature_checker,
            )
        ) if part else IngestReport(items=())  # fmt: skip
        # Indices back into `envelopes`; the skipped copies have no item here.
        report = stored if len(part) == len(envelopes) else IngestReport(items=tuple(
            ItemReport(index=unseen[i.index], outcome=i.outcome, id=i.id, reason=i.reason)
            for i in stored.items
        ))  # fmt: skip
        tree.remember(_held(report), through_tree=forwarded or source is None)
        fresh = [envelopes[i.index] for i in report.items if i.outcome is Outcome.NEW]
        if report.stored_ids:
            if self.stored_hook is not None:
                self.stored_hook(report.stored_ids)
            self.last_stored_at = trio.current_time()
            self._stored.set()
            self._stored = trio.Event()
        if source is not None:
            self.stored_from_peers += len(report.stored_ids)
            self.payload_copies_received += len(envelopes)
            self.payload_bytes_received += sum(len(e) for e in envelopes)
            self._progress.set()
            self._progress = trio.Event()
            if forwarded:
                duplicates = report.counts[Outcome.DUPLICATE]
                await self._push.maybe_prune(source, arrivals, duplicates=duplicates)
        if fresh:
            ids = [bytes(i.id) for i in report.items if i.outcome is Outcome.NEW and i.id]
            self._push.forward(fresh, ids, source=source)
        return report

    async def on_records(self, peer: PeerSession, message: Push | Deliver) -> None:
        """A peer's `push` or `deliver`: stored as it comes, or through the bulk intake."""
        # Large deliveries on links we dialled (our sessions' records) go to the
        # peer's intake (see `_bulk`); the rest is stored as it comes.
        bulk = (
            self._verify_ahead
            and isinstance(message, Deliver)
            and peer.dialled
            and peer.checks_ahead
            and len(message.envelopes) > _INGEST_PART
        )
        if not bulk or peer.nursery is None:
            await self._on_push(peer, message.envelopes, forwarded=isinstance(message, Push))
            return
        if peer.intake is None:
            peer.intake, deliveries = trio.open_memory_channel[Sequence[bytes]](2)
            peer.nursery.start_soon(self._bulk, peer, deliveries)
        await peer.intake.send(message.envelopes)

    async def _on_push(
        self, peer: PeerSession, envelopes: Sequence[bytes], *, forwarded: bool
    ) -> None:
        # A full push (1000 envelopes) holds the store for a while: take it in
        # parts, so our own writes and other peers' batches wait for one part.
        reasons: list[Reason] = []
        for start in range(0, len(envelopes), _INGEST_PART):
            report = await self.ingest(
                envelopes[start : start + _INGEST_PART], source=peer.identity, forwarded=forwarded
            )
            reasons += [i.reason for i in report.items if i.reason is not None]
        _judge(reasons)

    async def _bulk(
        self, peer: PeerSession, deliveries: trio.MemoryReceiveChannel[Sequence[bytes]]
    ) -> None:
        """Store the records of sessions we started: a join, a catch-up.

        Their signatures are checked in a worker thread while the store writes
        the previous batch on the other core, and what was checked while the
        store was busy goes in one batch (up to `_INTAKE_BATCH`). The reader
        waits when two deliveries are queued, so the peer's sending is held
        back, not buffered; the checks run at most three deliveries ahead of
        the store (`_check_each`). Not for what peers push unasked, nor once a
        batch was mostly refused by quota: an identity farm's records are refused
        *before* their signatures are checked (node/gossip/relay) on the inline
        path, so a peer we dialled that delivers a farm costs us at most a few
        batches of checks.
        """
        async with trio.open_nursery() as nursery:
            send, checked = trio.open_memory_channel[_Checked](1)
            checker = self._signature_checker
            begin = _checked_now(check_in_thread) if checker is None else checker.begin
            nursery.start_soon(_check_each, deliveries, send, lambda: peer.checks_ahead, begin)
            async with checked:
                async for envelopes, attestations in checked:
                    batch, known = list(envelopes), dict(attestations)
                    with contextlib.suppress(trio.WouldBlock):
                        while len(batch) < _INTAKE_BATCH:
                            more, more_checked = checked.receive_nowait()
                            batch += more
                            known.update(more_checked)
                    report = await self.ingest(
                        batch, source=peer.identity, forwarded=False, checked=known
                    )
                    reasons = [i.reason for i in report.items if i.reason is not None]
                    if reasons.count(Reason.QUOTA) * 10 > len(batch):
                        peer.checks_ahead = False  # what comes next: the inline path
                    _judge(reasons)
