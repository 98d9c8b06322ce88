"""Pre-committed rotation in the trust engine (SPEC §17): the chain is one member."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.trust import Edge, TrustEngine
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement
from protocol.identity import IdentityKey
from protocol.statement import Certify, Statement, Trust
from protocol.succession import commit_statement, member_trust_heads, rotation_statement
from protocol.supersession import is_current

KEYS = [IdentityKey.from_seed(bytes([n + 120]) * 32) for n in range(10)]
ME, K0, K1, K2, BOB, CAT, EVE, THIEF, PHONE, DAN = KEYS
NOW = 1_800_000_000_000
T0 = NOW - 100_000
TR = T0 + 1000  # the rotation


def att(key: IdentityKey, statement: Statement, *, at: int = T0) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def vouch(key: IdentityKey, subject: IdentityKey, value: int = 100, *, at: int = T0) -> Attestation:
    return att(key, Trust(subject=subject.identity, value=value), at=at)


def commit(key: IdentityKey, nxt: IdentityKey, at: int = T0 - 50) -> Attestation:
    return att(key, commit_statement(nxt.identity), at=at)


def rotate(
    new: IdentityKey, old: IdentityKey, after: IdentityKey | None, at: int = TR
) -> Attestation:
    return att(
        new, rotation_statement(old.identity, None if after is None else after.identity), at=at
    )


def reference_edges(attestations: list[Attestation], *, now_ms: int = NOW) -> list[Edge]:
    """SPEC §16.3 and §17.2 read literally over the set (`protocol.succession`)."""
    edges = [
        Edge(issuer=k[0], subject=k[1], value=h.statement.value, context=k[2])  # type: ignore[union-attr]
        for k, h in member_trust_heads(attestations).items()
        if is_current(h, now_ms=now_ms)
    ]
    return sorted(edges, key=lambda e: (e.issuer, e.subject, e.context))


def test_vouches_for_the_old_key_count_for_the_successor() -> None:
    history = [vouch(ME, K0), commit(K0, K1), rotate(K1, K0, K2), vouch(K1, BOB, at=TR + 1)]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=history)
    assert engine.member(K1.identity) == K0.identity
    assert engine.score(K1.identity) == engine.score(K0.identity) > 0.0
    assert engine.score(BOB.identity) > 0.0  # the new key's vouch is the member's
    # A second rotation, as committed in the first: still one member.
    engine.add([rotate(K2, K1, None, at=TR + 10), vouch(K2, CAT, at=TR + 11)])
    assert engine.member(K2.identity) == K0.identity
    assert engine.score(CAT.identity) > 0.0
    assert engine.score(K2.identity) == engine.score(K0.identity)


def test_the_old_keys_later_signatures_are_refused() -> None:
    before = vouch(K0, BOB, at=TR - 1)
    after = vouch(K0, EVE, at=TR)
    history = [vouch(ME, K0), commit(K0, K1), rotate(K1, K0, K2), before, after]
    for order in (history, history[::-1]):
        engine = TrustEngine(ME.identity, now_ms=NOW, attestations=order)
        assert engine.score(BOB.identity) > 0.0
        assert engine.score(EVE.identity) == 0.0


def test_a_thief_with_only_the_current_key_cannot_rotate() -> None:
    base = [vouch(ME, K0), commit(K0, K1)]
    # Signed by the thief's own key: not the committed one.
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=[*base, rotate(THIEF, K0, None)])
    assert engine.member(THIEF.identity) == THIEF.identity
    assert engine.score(THIEF.identity) == 0.0
    # The thief also commits to its key with the stolen one: a second commitment
    # disputes the chain, so no rotation of K0 counts, the thief's or the owner's.
    disputed = [*base, commit(K0, THIEF, at=T0 - 10), rotate(THIEF, K0, None), rotate(K1, K0, None)]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=disputed)
    assert engine.member(THIEF.identity) == THIEF.identity
    assert engine.member(K1.identity) == K1.identity
    assert engine.score(THIEF.identity) == 0.0


def test_rotation_and_identity_statements_are_not_certifications() -> None:
    history = [vouch(ME, K0), commit(K0, K1), rotate(K1, K0, K2)]
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=history)
    assert engine.certifiers(K0.identity, "key:rotate") == []


def test_devices_and_certifications_survive_a_rotation() -> None:
    history = [
        vouch(ME, K0), commit(K0, K1),
        att(K0, grant_statement(PHONE.identity)), att(PHONE, accept_statement(K0.identity)),
        att(K0, Certify(subject=BOB.identity, claim="resident"), at=TR - 5),
        rotate(K1, K0, None), vouch(PHONE, DAN, at=TR + 5),
    ]  # fmt: skip
    engine = TrustEngine(ME.identity, now_ms=NOW, attestations=history)
    assert engine.member(PHONE.identity) == K0.identity
    assert engine.score(DAN.identity) > 0.0
    assert engine.certifiers(BOB.identity, "resident") == [K0.identity]


@st.composite
def rotation_histories(draw: st.DrawFn) -> list[Attestation]:
    out = [vouch(ME, K0, at=T0 - 100), commit(K0, K1)]
    if draw(st.booleans()):
        out.append(rotate(K1, K0, K2, at=TR + draw(st.integers(-20, 20))))
    if draw(st.booleans()):
        out.append(rotate(K2, K1, None, at=TR + 30))
    if draw(st.booleans()):
        out.append(commit(K0, THIEF, at=T0 + draw(st.integers(0, 2000))))
    if draw(st.booleans()):
        out.append(rotate(THIEF, K0, None, at=TR + 5))
    writes = draw(
        st.lists(
            st.tuples(
                st.sampled_from([K0, K1, K2, THIEF]),
                st.sampled_from([BOB, CAT, EVE, K0, K1]),
                st.integers(-100, 100),
                st.integers(-40, 60),
            ),
            max_size=12,
        )
    )
    out += [vouch(s, o, v, at=TR + d) for s, o, v, d in writes if s != o]
    return out


@settings(max_examples=60, deadline=None)
@given(history=rotation_histories(), data=st.data())
def test_any_arrival_order_gives_the_spec_reading(
    history: list[Attestation], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(history))
    engine = TrustEngine(ME.identity, now_ms=NOW)
    for a in order:
        engine.add([a])
    assert engine.edges() == reference_edges(history)
