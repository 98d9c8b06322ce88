"""Device keys in the trust engine (SPEC §16): a device speaks for its root.

The property tests compare the engine, fed in any order and any batching,
with the SPEC read literally over the whole set: bind devices, drop what a
device signed at or after its cut-off, map keys to members, then supersede
by member slot.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.trust import Edge, TrustEngine
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import (
    accept_statement,
    grant_statement,
    leave_statement,
    revoke_device_statement,
)
from protocol.identity import IdentityKey
from protocol.statement import Certify, Statement, Trust
from protocol.succession import member_trust_heads
from protocol.supersession import is_current

KEYS = [IdentityKey.from_seed(bytes([n + 90]) * 32) for n in range(10)]
ME, ALICE, PHONE, LAPTOP, BOB, CAT, DAN, MALLORY, TABLET, EVE = KEYS
NOW = 1_800_000_000_000
T0 = NOW - 100_000


def att(key: IdentityKey, statement: Statement, *, at: int = T0) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def vouch(key: IdentityKey, subject: IdentityKey, value: int = 100, *, at: int = T0) -> Attestation:
    return att(key, Trust(subject=subject.identity, value=value), at=at)


def pair(root: IdentityKey, device: IdentityKey, *, at: int = T0 - 10) -> list[Attestation]:
    return [
        att(root, grant_statement(device.identity), at=at),
        att(device, accept_statement(root.identity), at=at),
    ]


def reference_edges(attestations: list[Attestation], *, now_ms: int = NOW) -> list[Edge]:
    """SPEC §16.3 and §17.2 read literally over the set (`protocol.succession`)."""
    edges = [
        Edge(issuer=k[0], subject=k[1], value=h.statement.value, context=k[2])  # type: ignore[union-attr]
        for k, h in member_trust_heads(attestations).items()
        if is_current(h, now_ms=now_ms)
    ]
    return sorted(edges, key=lambda e: (e.issuer, e.subject, e.context))


def test_a_devices_vouch_counts_as_its_roots() -> None:
    base = [vouch(ME, ALICE), *pair(ALICE, PHONE), vouch(PHONE, BOB)]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=base)
    direct = TrustEngine(
        ME.identity, now_ms=NOW, attestations=[vouch(ME, ALICE), vouch(ALICE, BOB)]
    )
    assert engine.score(BOB.identity) > 0.0
    assert engine.score(BOB.identity) == direct.score(BOB.identity)
    assert engine.member(PHONE.identity) == ALICE.identity
    # A vouch for the device key is a vouch for the member.
    about_device = TrustEngine(
        ME.identity, now_ms=NOW, attestations=[vouch(ME, PHONE), *pair(ALICE, PHONE)]
    )
    assert about_device.score(ALICE.identity) == about_device.score(PHONE.identity) > 0.0
    assert PHONE.identity not in about_device.walk().identities


def test_binding_statements_are_not_certifications() -> None:
    engine = TrustEngine(
        ME.identity, now_ms=NOW, attestations=[vouch(ME, ALICE), *pair(ALICE, PHONE)]
    )
    assert engine.certifiers(PHONE.identity, "key:device") == []
    assert engine.certifiers(ALICE.identity, "key:root") == []


def test_half_a_binding_binds_nothing() -> None:
    # Mallory claims Alice's phone as hers: without the phone's acceptance it stays the phone's.
    grant_only = [
        vouch(ME, PHONE),
        att(MALLORY, grant_statement(PHONE.identity)),
        vouch(PHONE, BOB),
    ]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=grant_only)
    assert engine.member(PHONE.identity) == PHONE.identity
    # A key that accepted two roots is a device of neither.
    torn = [*pair(ALICE, PHONE), *pair(MALLORY, PHONE)]
    assert (
        TrustEngine(ME.identity, now_ms=NOW, attestations=torn).member(PHONE.identity)
        == PHONE.identity
    )
    # A device cannot authorise devices.
    chain = [*pair(ALICE, PHONE), *pair(PHONE, TABLET)]
    chained = TrustEngine(ME.identity, now_ms=NOW, attestations=chain)
    assert chained.member(TABLET.identity) == TABLET.identity


def test_revocation_keeps_the_past_and_refuses_the_future() -> None:
    t = T0 + 1000
    before = vouch(PHONE, BOB, at=t - 1)
    after = vouch(PHONE, CAT, at=t)
    revoke = att(ALICE, revoke_device_statement(PHONE.identity), at=t)
    base = [vouch(ME, ALICE), *pair(ALICE, PHONE), before, after]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=base)
    assert engine.score(CAT.identity) > 0.0
    engine.add([revoke])
    assert engine.score(BOB.identity) > 0.0
    assert engine.score(CAT.identity) == 0.0
    assert engine.devices(ALICE.identity) == [(PHONE.identity, T0 - 10, t)]


def test_a_revoked_device_cannot_erase_what_it_said_before() -> None:
    # The thief re-signs the phone's vouch for Bob as a distrust after the revocation.
    t = T0 + 1000
    kept = vouch(PHONE, BOB, 80, at=t - 5)
    erased = vouch(PHONE, BOB, -100, at=t + 5)
    revoke = att(ALICE, revoke_device_statement(PHONE.identity), at=t)
    for order in ([kept, erased, revoke], [erased, revoke, kept], [revoke, erased, kept]):
        engine = TrustEngine(
            ME.identity, now_ms=NOW, attestations=[vouch(ME, ALICE), *pair(ALICE, PHONE)]
        )
        for a in order:
            engine.add([a])
        assert engine.edges() == reference_edges(
            [vouch(ME, ALICE), *pair(ALICE, PHONE), kept, erased, revoke]
        )
        assert Edge(issuer=ALICE.identity, subject=BOB.identity, value=80) in engine.edges()


def test_a_device_that_leaves_stops_speaking() -> None:
    t = T0 + 1000
    leave = att(PHONE, leave_statement(ALICE.identity), at=t)
    base = [vouch(ME, ALICE), *pair(ALICE, PHONE), vouch(PHONE, BOB, at=t + 1), leave]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=base)
    assert engine.score(BOB.identity) == 0.0


def test_a_device_viewer_sees_through_its_root() -> None:
    base = [vouch(ALICE, BOB), *pair(ALICE, PHONE)]
    engine = TrustEngine(PHONE.identity, now_ms=NOW, attestations=base)
    assert engine.viewer == ALICE.identity
    assert engine.score(BOB.identity) > 0.0


# -- property tests -------------------------------------------------------------------

SUBJECTS = [BOB, CAT, DAN, EVE]
SIGNERS = [ALICE, PHONE, LAPTOP, TABLET]


@st.composite
def device_histories(draw: st.DrawFn) -> list[Attestation]:
    """Alice, three devices, writes from all of them, and revocations at random times."""
    out = [vouch(ME, ALICE, at=T0 - 100)]
    for device in (PHONE, LAPTOP, TABLET):
        if draw(st.booleans()):
            out.extend(pair(ALICE, device, at=T0 - draw(st.integers(1, 50))))
        if draw(st.booleans()):
            when = T0 + draw(st.integers(0, 40))
            who = draw(st.sampled_from(["root", "device"]))
            statement = (
                revoke_device_statement(device.identity)
                if who == "root"
                else leave_statement(ALICE.identity)
            )
            out.append(att(ALICE if who == "root" else device, statement, at=when))
    writes = draw(
        st.lists(
            st.tuples(
                st.sampled_from(SIGNERS),
                st.sampled_from(SUBJECTS),
                st.integers(-100, 100),
                st.integers(0, 40),
            ),
            max_size=14,
        )
    )
    for signer, subject, value, offset in writes:
        out.append(vouch(signer, subject, value, at=T0 + offset))
    return out


@settings(max_examples=60, deadline=None)
@given(history=device_histories(), data=st.data())
def test_any_arrival_order_gives_the_spec_reading(
    history: list[Attestation], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(history))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(order)), max_size=4)))
    engine = TrustEngine(ME.identity, now_ms=NOW)
    start = 0
    for cut in [*cuts, len(order)]:
        engine.add(order[start:cut])
        start = cut
    assert engine.edges() == reference_edges(history)
    # Scores too: the engine's walk is built from exactly these edges.
    fresh = TrustEngine(ME.identity, now_ms=NOW, attestations=history)
    assert engine.scores() == fresh.scores()


@settings(max_examples=40, deadline=None)
@given(
    writes=st.lists(
        st.tuples(
            st.sampled_from([PHONE, LAPTOP, TABLET]), st.sampled_from(SUBJECTS), st.integers(1, 100)
        ),
        min_size=1,
        max_size=12,
    ),
    data=st.data(),
)
def test_concurrent_devices_never_lose_an_edge(
    writes: list[tuple[IdentityKey, IdentityKey, int]], data: st.DataObject
) -> None:
    # Every device writes in the same millisecond: each (subject) is one member slot,
    # and an edge is lost only if another write to the same slot beats it.
    history = [vouch(ME, ALICE), *pair(ALICE, PHONE), *pair(ALICE, LAPTOP), *pair(ALICE, TABLET)]
    history += [vouch(signer, subject, value, at=T0 + 5) for signer, subject, value in writes]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=data.draw(st.permutations(history)))
    alice_edges = {e.subject for e in engine.edges() if e.issuer == ALICE.identity}
    assert alice_edges == {subject.identity for _, subject, _ in writes}
    assert engine.edges() == reference_edges(history)


def test_certifications_by_a_device_count_for_the_root() -> None:
    base = [
        vouch(ME, ALICE),
        *pair(ALICE, PHONE),
        att(PHONE, Certify(subject=BOB.identity, claim="resident")),
    ]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=base)
    assert engine.certifiers(BOB.identity, "resident") == [ALICE.identity]
