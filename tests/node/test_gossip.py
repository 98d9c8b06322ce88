"""Replication over the simulated network: reconcile, pull, flood (virtual time)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import pytest
import trio
import trio.testing

from node.gossip.gossip_node import CAPABILITIES, GossipNode, InlineStore, ThreadedStore
from node.gossip.session import PeerSession
from node.gossip.signatures import SignatureChecker, check_in_thread
from node.net.simnet import SimNetwork
from node.store import AttestationStore, Store
from node.store.pipeline import Admission
from protocol.attestation import Attestation, AttestationBody, attestation_id, sign_attestation
from protocol.errors import Reason, RemoteProtocolError
from protocol.identity import IdentityId, IdentityKey, short_identity_text
from protocol.statement import Trust
from protocol.wire import Deliver, Push
from simulations.convergence import link

T0 = 1_700_000_000_000


class Member:
    """A node of the test community: key, store, gossip."""

    def __init__(
        self,
        name: str,
        seed: int,
        admit: Admission | None = None,
        *,
        wide_seed: bool = False,
        verify_ahead: bool = False,
        routes: bool = True,
    ) -> None:
        self.name = name
        # Seeds 1..255 repeat one byte (the keys other tests use); wide seeds any int.
        material = seed.to_bytes(32, "big") if wide_seed else bytes([seed]) * 32
        self.key = IdentityKey.from_seed(material)
        self.store = Store.open(":memory:")
        self.gossip = GossipNode(
            store=InlineStore(self.store),
            wall_clock_ms=lambda: T0 + int(trio.current_time() * 1000),
            admit=admit,
            verify_ahead=verify_ahead,
            identity=self.key.identity,
        )
        if not routes:  # play a node that knows only the shared push tree
            self.gossip.capabilities = tuple(c for c in CAPABILITIES if c != "routes")

    def attest(self, subject: Member, n: int) -> Attestation:
        body = AttestationBody(
            issuer=self.key.identity,
            issued_at_ms=T0 - 10_000 + n,
            statement=Trust(subject=subject.key.identity, context=f"c{n}", value=50),
        )
        return sign_attestation(body, self.key)

    def ids(self) -> set[bytes]:
        return {bytes(i) for _, i in self.store.ids_in_order(limit=100_000)}


async def test_three_nodes_converge_then_flood(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=5)
    a, b, c = Member("a", 1), Member("b", 2), Member("c", 3)
    # Divergent starting points: each knows attestations the others lack.
    for member, other, offset in ((a, b, 0), (b, c, 1000), (c, a, 2000)):
        made = [member.attest(other, offset + n) for n in range(300)]
        member.store.apply(made, now_ms=T0)
    shared = a.attest(c, 5000)
    for member in (a, b, c):
        member.store.apply([shared], now_ms=T0)
    union = a.ids() | b.ids() | c.ids()
    assert len(union) == 901

    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)  # a - b - c: c only reaches a through b
        await link(net, nursery, c, b)
        await trio.sleep(30)
        assert a.ids() == b.ids() == c.ids() == union

        fresh = a.attest(b, 9000)
        start = trio.current_time()
        await a.gossip.publish([fresh])
        await trio.sleep(5)
        assert bytes(fresh.id) in c.ids()
        assert trio.current_time() - start <= 5
        nursery.cancel_scope.cancel()


async def test_garbage_push_disconnects_the_peer(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=6)
    a, b = Member("a", 1), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        assert a.gossip.peers == [b.key.identity]
        # b's node sends a syntactically broken message through its session.
        peer = b.gossip._peers[a.key.identity]
        await peer.stream.send_all(b"\x00\x00\x00\x02\x91\x07")
        await trio.sleep(5)
        assert a.gossip.protocol_errors == 1
        assert a.gossip.peers == []
        # Malformed bytes close the connection; they do not ban (SPEC reasons, node/policy).
        assert not a.gossip.bans.is_banned(b.key.identity)
        nursery.cancel_scope.cancel()


async def test_forged_push_bans_the_peer(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=7)
    a, b = Member("a", 1), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        forged = bytearray(b.attest(a, 1).data)
        forged[-1] ^= 1
        peer = b.gossip._peers[a.key.identity]
        await peer.send(Push(envelopes=(bytes(forged),)))
        await trio.sleep(5)
        assert a.gossip.bans.is_banned(b.key.identity)
        assert a.gossip.peers == []
        assert not a.store.contains(attestation_id(bytes(forged)))
        nursery.cancel_scope.cancel()


async def _until(condition: Callable[[], bool]) -> None:
    """Poll in real time (what a worker thread does is no trio event)."""
    while True:
        if condition():
            return
        await trio.sleep(0.05)


async def test_a_forged_record_in_a_delivery_checked_ahead_bans_the_peer() -> None:
    # Real time: the signatures are checked in a real worker thread.
    net = SimNetwork(seed=7)
    a, b = Member("a", 1, verify_ahead=True), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)  # a dialled: b's deliveries go to a's intake
        with trio.fail_after(20):
            await _until(lambda: a.key.identity in b.gossip._peers)
            records = [b.attest(a, n).data for n in range(300)]
            forged = bytearray(records[150])
            forged[-1] ^= 1
            records[150] = bytes(forged)
            peer = b.gossip._peers[a.key.identity]
            await peer.send(Deliver(envelopes=tuple(records)))
            await _until(lambda: a.gossip.bans.is_banned(b.key.identity))
        assert a.gossip.protocol_errors == 1
        # The valid records were kept; the forged one was not.
        assert {bytes(attestation_id(r)) for n, r in enumerate(records) if n != 150} <= a.ids()
        assert not a.store.contains(attestation_id(bytes(forged)))
        nursery.cancel_scope.cancel()


async def test_anti_entropy_repairs_missed_pushes(autojump_clock: trio.testing.MockClock) -> None:
    net = SimNetwork(seed=8)
    a, b = Member("a", 1), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        # Attestations that reach b's store without being pushed (say, a lost push).
        missed = [b.attest(a, 7000 + n) for n in range(40)]
        b.store.apply(missed, now_ms=T0)
        await trio.sleep(30)
        assert not any(bytes(m.id) in a.ids() for m in missed)
        await trio.sleep(40)  # the next anti-entropy session (every 60 s)
        assert all(bytes(m.id) in a.ids() for m in missed)
        nursery.cancel_scope.cancel()


async def test_a_fast_sender_is_read_at_the_receive_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=9)
    a = Member("a", 1)
    b = Member("b", 2)
    b.gossip = GossipNode(
        store=InlineStore(b.store),
        wall_clock_ms=lambda: T0 + int(trio.current_time() * 1000),
        max_receive_bytes_per_s=20_000,
        receive_burst_bytes=10_000,
    )
    flood = [a.attest(b, 9000 + n) for n in range(600)]  # about 150 kB
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(1)
        start = trio.current_time()
        await a.gossip.publish(flood)
        await trio.sleep(2)
        assert len(b.ids()) < len(flood)  # read at 20 kB/s, not all at once
        while len(b.ids()) < len(flood):
            await b.gossip.wait_progress()
        took = trio.current_time() - start
        size = sum(len(x.data) for x in flood)
        assert took >= (size - 10_000) / 20_000 * 0.9
        nursery.cancel_scope.cancel()


async def test_a_full_disk_ends_the_session_not_the_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=9)
    a, b = Member("a", 1), Member("b", 2)
    pages = a.store._connection.execute("PRAGMA page_count").fetchone()[0]
    a.store._connection.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL from now on
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        made = [b.attest(a, n) for n in range(50)]
        await b.gossip.publish(made)
        await trio.sleep(5)
        assert a.ids() == set()  # nothing stored, nothing torn
        assert not a.gossip.bans.is_banned(b.key.identity)  # not the peer's fault
        assert a.gossip.store_errors >= 1
        a.store._connection.execute("PRAGMA max_page_count = 1073741823")  # room again
        await link(net, nursery, b, a)  # b reconnects (its peer manager would)
        await trio.sleep(70)  # within one anti-entropy period
        assert a.ids() == {bytes(m.id) for m in made}
        nursery.cancel_scope.cancel()


async def _reconcile_scattered(
    older_peer: bool, *, without: str = "sync-compact"
) -> tuple[int, int]:
    """Two members whose stores differ by scattered attestations reconcile once;
    returns the reconciliation bytes sent and how many attestations b received."""
    net = SimNetwork(seed=9)
    a, b = Member("a", 1), Member("b", 2)
    if older_peer:  # b plays a node from before `without` (sync-compact implies the rest)
        b.gossip.capabilities = tuple(c for c in b.gossip.capabilities if c != without)
    made = [a.attest(b, n) for n in range(3000)]
    a.store.apply(made, now_ms=T0)
    b.store.apply([m for n, m in enumerate(made) if n % 50], now_ms=T0)  # b lacks 2 %
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(10)
        assert a.ids() == b.ids()
        nursery.cancel_scope.cancel()
    return a.gossip.sync_bytes_sent + b.gossip.sync_bytes_sent, b.gossip.stored_from_peers


async def test_compact_sync_with_new_peers_and_full_forms_with_older_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    compact_bytes, compact_received = await _reconcile_scattered(older_peer=False)
    full_bytes, full_received = await _reconcile_scattered(older_peer=True)
    assert compact_received == full_received == 60
    # An older peer gets (and sends) only the modes it knows, so it still converges;
    # two current peers use prefix lists and short fingerprints.
    assert compact_bytes < 0.8 * full_bytes


async def test_sketch_sync_with_new_peers_and_compact_forms_with_older_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sketch_bytes, sketch_received = await _reconcile_scattered(older_peer=False)
    compact_bytes, compact_received = await _reconcile_scattered(
        older_peer=True, without="sync-sketch"
    )
    assert sketch_received == compact_received == 60
    # A peer from before sync-sketch gets compact forms; two current ones use sketches.
    assert sketch_bytes < 0.6 * compact_bytes


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    return [
        leaf
        for e in group.exceptions
        for leaf in (_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    ]


async def test_records_checked_ahead_are_stored_and_judged_as_inline() -> None:
    """The daemon checks the signatures of its sessions' records ahead of the
    store (`verify_ahead`), in a worker process (or a thread): what is stored
    and the peer's verdict must be the inline path's. Real threads, so real time."""
    author, other = Member("author", 1), Member("other", 2)
    made = [author.attest(other, n).data for n in range(2300)]
    forged = bytearray(made[2100])
    forged[-1] ^= 1
    delivery = [*made[:2100], bytes(forged), *made[2101:]]
    results = []
    checker = SignatureChecker()  # the daemon's way: checks in a worker process
    for ahead, worker in ((True, None), (True, checker), (False, None)):
        store = Store.open(":memory:")
        node = GossipNode(
            store=ThreadedStore(store),
            wall_clock_ms=lambda: T0,
            verify_ahead=ahead,
            signature_checker=worker,
        )
        peer = PeerSession(identity=other.key.identity, stream=None, dialled=True)  # type: ignore[arg-type]
        reasons: list[Reason] = []
        with trio.fail_after(60):
            try:
                async with trio.open_nursery() as nursery:
                    peer.nursery = nursery
                    for start in range(0, len(delivery), 1000):
                        message = Deliver(envelopes=tuple(delivery[start : start + 1000]))
                        await node.intake.on_records(peer, message)
                    await trio.sleep_forever()  # until the refused record ends the session
            except* RemoteProtocolError as group:
                reasons = [e.reason for e in _leaves(group) if isinstance(e, RemoteProtocolError)]
        assert (peer.intake is not None) == ahead  # the path under test was taken
        results.append((reasons, {bytes(i) for _, i in store.ids_in_order(limit=10_000)}))
    checker.close()
    # The waiting thread may take back parts no worker had started (SignatureChecker.start).
    assert checker.checked_in_worker > 0
    assert checker.checked_in_worker + checker.checked_here >= 2000
    assert results[0] == results[1] == results[2]
    reasons, stored = results[0]
    assert reasons == [Reason.BAD_SIGNATURE]
    assert stored == {bytes(attestation_id(d)) for n, d in enumerate(made) if n != 2100}


class _RefuseFarm:
    """An admission that refuses one issuer (a farm past its quota), before and after checks."""

    def __init__(self, farm: bytes) -> None:
        self.farm = farm

    def __call__(
        self, store: AttestationStore, attestations: list[Attestation]
    ) -> list[Reason | None]:
        return [Reason.QUOTA if a.issuer == self.farm else None for a in attestations]

    def refused_unverified(self, store: AttestationStore, issuers: list[IdentityId]) -> list[bool]:
        return [issuer == self.farm for issuer in issuers]


async def test_a_dialled_peer_delivering_a_farm_gets_few_signature_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checking ahead skips the quota check that precedes signatures; once a batch
    is mostly refused by quota, the peer's deliveries go the inline way again."""
    checked: list[int] = []
    real_check = check_in_thread

    def counting(envelopes: Sequence[bytes]) -> dict[bytes, Attestation]:
        checked.append(len(envelopes))
        return real_check(envelopes)

    monkeypatch.setattr("node.gossip.intake.check_in_thread", counting)
    farm, victim = Member("farm", 3), Member("victim", 4)
    store = Store.open(":memory:")
    gate = _RefuseFarm(farm.key.identity)
    node_ = GossipNode(
        store=ThreadedStore(store), wall_clock_ms=lambda: T0, verify_ahead=True, admit=gate
    )
    peer = PeerSession(identity=farm.key.identity, stream=None, dialled=True)  # type: ignore[arg-type]
    deliveries = 20
    records = [farm.attest(victim, n).data for n in range(1000 * deliveries)]
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            peer.nursery = nursery
            for start in range(0, len(records), 1000):
                await node_.intake.on_records(
                    peer, Deliver(envelopes=tuple(records[start : start + 1000]))
                )
            nursery.cancel_scope.cancel()
    assert not peer.checks_ahead
    # The first batch, and what the checking thread had in hand when it was judged.
    assert sum(checked) <= 5000, checked
    assert store.statistics().attestations == 0


async def test_connection_events_are_one_line_each_naming_the_peer_as_tn(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trustnode.gossip")
    net = SimNetwork(seed=6)
    a, b = Member("a", 1), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        a.name = "a-again"  # a fresh address for a second connection: refused, quietly
        await link(net, nursery, a, b)
        await trio.sleep(5)
        peer = b.gossip._peers[a.key.identity]
        await peer.stream.send_all(b"\x00\x00\x00\x02\x91\x07")  # a's side breaks it off
        await trio.sleep(5)
        nursery.cancel_scope.cancel()
    b_label = short_identity_text(b.key.identity)
    about_b = [r for r in caplog.records if r.name == "trustnode.gossip" and b_label in r.message]
    assert [r.message.split(b_label)[1] for r in about_b if r.levelno >= logging.INFO] == [
        " connected (outbound)",
        " disconnected: it broke the protocol (malformed)",
    ]
    assert not any(b.key.identity.hex()[:16] in r.message for r in caplog.records)


class _Addresses:
    """A peer exchange that hands out one address and remembers what it learns."""

    def __init__(self) -> None:
        self.learned: list[tuple[str, ...]] = []

    def sample(self) -> tuple[str, ...]:
        return ("127.0.0.1:7000",)

    def learn(self, addresses: tuple[str, ...], *, source: IdentityId) -> None:
        self.learned.append(addresses)


async def test_the_nodes_figures_and_hooks_are_its_parts() -> None:
    """What callers read and set on a GossipNode (the service, simulations,
    benchmarks, the peer manager) reaches the part that keeps it."""
    node = GossipNode(store=InlineStore(Store.open(":memory:")), wall_clock_ms=lambda: T0)
    stored: list[int] = []
    node.stored_hook = lambda ids: stored.append(len(ids))
    assert node.intake.stored_hook is node.stored_hook
    exchange = _Addresses()
    node.exchange = exchange
    assert node.sharing.source is exchange
    assert node.exchange is exchange
    author, other = Member("author", 1), Member("other", 2)
    report = await node.publish([author.attest(other, n) for n in range(3)])
    assert len(report.stored_ids) == 3
    assert stored == [3]
    assert node.last_stored_at is not None
    assert node.tree is node.push.tree
    assert node.routes is node.source_trees.routes
    assert (node.stored_from_peers, node.grafts_sent, node.sync_bytes_sent) == (0, 0, 0)
    assert (node.last_sync_at, node.route_entries_received) == ({}, 0)


def test_a_session_uses_the_sync_forms_only_both_sides_name() -> None:
    ours = tuple(c for c in CAPABILITIES if c != "sync-sketch")
    peer = PeerSession(identity=IdentityKey.from_seed(b"\x05" * 32).identity, stream=None)  # type: ignore[arg-type]
    assert not peer.hear_hello(CAPABILITIES, ours[:-2])  # we do not say `routes`
    assert (peer.compact_sync, peer.sketch_sync) == (True, False)  # it said both, we one
    assert (peer.grafts, peer.delivers, peer.short_ids, peer.names) == (True,) * 4
    assert peer.hear_hello(("push", "routes"), CAPABILITIES)
    assert (peer.compact_sync, peer.grafts, peer.names) == (False,) * 3
