"""Relay policy: vouched issuers pass, an identity farm is capped at its quota."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from node.gossip.relay import RelayGate, RelayPolicy
from node.net.simnet import SimNetwork
from node.store import Outcome, Store, ingest
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.errors import Reason
from protocol.identity import IdentityKey
from protocol.statement import Trust
from simulations.convergence import link
from tests.node.test_gossip import T0, Member

KEYS = [IdentityKey.from_seed(bytes([n]) * 32) for n in range(1, 9)]


def trust(issuer: IdentityKey, subject: IdentityKey, n: int = 0, value: int = 60) -> Attestation:
    body = AttestationBody(
        issuer=issuer.identity,
        issued_at_ms=T0 + n,
        statement=Trust(subject=subject.identity, context=f"c{n}", value=value),
    )
    return sign_attestation(body, issuer)


def test_vouched_set_follows_positive_chains_within_the_horizon() -> None:
    me, a, b, c, d, flagged = KEYS[:6]
    store = Store.open(":memory:")
    chain = [trust(me, a), trust(a, b), trust(b, c), trust(c, d), trust(me, flagged, value=-80)]
    store.apply(chain, now_ms=T0)
    gate = RelayGate(
        anchors=[me.identity],
        policy=RelayPolicy(method="horizon", horizon_hops=3),
        wall_clock_ms=lambda: T0,
    )
    vouched = gate.vouched(store)
    assert {me.identity, a.identity, b.identity, c.identity} <= vouched
    assert d.identity not in vouched  # four hops away
    assert flagged.identity not in vouched  # distrust never vouches


def test_strangers_are_capped_and_vouching_lifts_the_cap() -> None:
    me, friend, stranger = KEYS[0], KEYS[1], KEYS[2]
    store = Store.open(":memory:")
    store.apply([trust(me, friend)], now_ms=T0)
    clock = [T0]
    gate = RelayGate(
        anchors=[me.identity], policy=RelayPolicy(unvouched_quota=3), wall_clock_ms=lambda: clock[0]
    )
    flood = [trust(stranger, friend, n) for n in range(10)] + [trust(friend, stranger, 99)]
    report = ingest(store, [a.data for a in flood], now_ms=T0, admit=gate)
    outcomes = [(i.outcome, i.reason) for i in report.items]
    assert outcomes[:3] == [(Outcome.NEW, None)] * 3
    assert outcomes[3:10] == [(Outcome.REJECTED, Reason.QUOTA)] * 7
    assert outcomes[10] == (Outcome.NEW, None)  # the friend (vouched) vouches for the stranger
    gate.invalidate()
    later = ingest(store, [trust(stranger, friend, 50).data], now_ms=T0, admit=gate)
    assert later.items[0].outcome is Outcome.NEW


async def test_identity_farm_cannot_flood_an_honest_node(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=21)
    gate = RelayGate(
        anchors=[KEYS[0].identity], policy=RelayPolicy(unvouched_quota=5), wall_clock_ms=lambda: T0
    )
    honest, relay = Member("honest", 1, admit=gate), Member("relay", 2)
    farm = [IdentityKey.from_seed(bytes([100 + n]) * 32) for n in range(20)]
    spam = [trust(f, KEYS[3], n) for f in farm for n in range(50)]
    async with trio.open_nursery() as nursery:
        await link(net, nursery, honest, relay)
        await trio.sleep(5)
        await relay.gossip.publish(spam)  # 1000 valid attestations from 20 fresh identities
        await trio.sleep(30)
        stored = honest.store.statistics().attestations
        assert stored <= 20 * 5
        assert gate.refused >= 900
        assert honest.gossip.peers == [relay.key.identity]  # quota refusals do not blame the relay
        nursery.cancel_scope.cancel()


def test_flow_caps_a_farm_behind_one_confused_member() -> None:
    me, a, b, confused = KEYS[:4]
    farm = [IdentityKey.from_seed(bytes([100 + n]) * 32) for n in range(30)]
    store = Store.open(":memory:")
    honest = [trust(me, a), trust(me, b), trust(a, confused), trust(b, a, 1), trust(a, b, 2)]
    attack = [trust(confused, farm[0], 3)] + [
        trust(farm[n], farm[n + 1], 10 + n) for n in range(len(farm) - 1)
    ]
    store.apply(honest + attack, now_ms=T0)
    flow = RelayGate(anchors=[me.identity], wall_clock_ms=lambda: T0).vouched(store)
    horizon = RelayGate(
        anchors=[me.identity], policy=RelayPolicy(method="horizon", horizon_hops=40),
        wall_clock_ms=lambda: T0,
    ).vouched(store)  # fmt: skip
    farm_ids = {key.identity for key in farm}
    assert {me.identity, a.identity, b.identity, confused.identity} <= flow
    assert len(farm_ids & horizon) == len(farm)  # a long enough horizon vouches the whole farm
    assert len(farm_ids & flow) < len(farm) // 2  # flow: at most the confused member's capacity


def _budget_of_30(me: IdentityKey, friend: IdentityKey) -> tuple[Store, RelayGate]:
    """A store where `me` vouches for `friend`; unvouched issuers share 30 stored."""
    store = Store.open(":memory:")
    store.apply([trust(me, friend)], now_ms=T0)
    gate = RelayGate(
        anchors=[me.identity], policy=RelayPolicy(unvouched_quota=20, unvouched_total=30),
        wall_clock_ms=lambda: T0,
    )  # fmt: skip
    return store, gate


def test_fresh_identities_are_capped_all_together() -> None:
    # Identities are free: a farm of fresh identities, one attestation each, passes any
    # per-issuer quota; the total budget for unvouched issuers still holds.
    me, friend = KEYS[0], KEYS[1]
    store, gate = _budget_of_30(me, friend)
    farm = [IdentityKey.from_seed((5000 + n).to_bytes(32, "big")) for n in range(50)]
    report = ingest(store, [trust(k, friend).data for k in farm], now_ms=T0, admit=gate)
    assert report.counts[Outcome.NEW] == 30
    assert report.counts[Outcome.REJECTED] == 20
    vouched = ingest(store, [trust(friend, me, 7).data], now_ms=T0, admit=gate)
    assert vouched.items[0].outcome is Outcome.NEW  # members the node follows still pass


def test_over_quota_issuers_are_refused_before_their_signatures_are_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from protocol.attestation import decode_envelope, open_signed, signed_message

    me, friend = KEYS[0], KEYS[1]
    store, gate = _budget_of_30(me, friend)
    farm = [IdentityKey.from_seed((7000 + n).to_bytes(32, "big")) for n in range(50)]
    ingest(store, [trust(k, friend).data for k in farm[:30]], now_ms=T0, admit=gate)  # budget spent
    checked: list[tuple[bytes, bytes]] = []

    def counting(messages: list[tuple[bytes, bytes]]) -> bytes:
        checked.extend(messages)
        return open_signed(messages)

    monkeypatch.setattr("node.store.pipeline.open_signed", counting)
    late = [trust(k, friend).data for k in farm[30:]]
    report = ingest(store, [*late, trust(friend, me, 7).data], now_ms=T0, admit=gate)
    assert [i.reason for i in report.items[:20]] == [Reason.QUOTA] * 20
    assert report.items[20].outcome is Outcome.NEW
    vouched = decode_envelope(trust(friend, me, 7).data)
    assert checked == [signed_message(vouched)]  # only the vouched issuer's was checked
    assert gate.refused == 20
