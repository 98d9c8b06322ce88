"""`explain` shows succession (issue 26): old keys, devices and vetoed recoveries."""

from __future__ import annotations

from node.trust import TrustEngine
from node.trust.key_history import KeyRole, RecoveryState
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement
from protocol.identity import IdentityKey
from protocol.recovery import (
    DEFAULT_WAIT_MS,
    designation_statements,
    recovery_statement,
    veto_statement,
)
from protocol.statement import Statement, Trust
from protocol.succession import commit_statement, rotation_statement

KEYS = [IdentityKey.from_seed(bytes([n + 60]) * 32) for n in range(10)]
ME, ALICE, BOB, BOB2, PHONE, C1, C2, C3, NEWKEY, OTHER = KEYS
T0 = 1_800_000_000_000


def att(key: IdentityKey, statement: Statement, *, at: int = T0) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def vouch(key: IdentityKey, subject: IdentityKey, *, at: int = T0) -> Attestation:
    return att(key, Trust(subject=subject.identity, value=100), at=at)


def test_a_vouch_for_a_previous_key_is_explained_as_such() -> None:
    history = [
        vouch(ME, ALICE), vouch(ALICE, BOB, at=T0 + 5),  # Alice vouched for Bob's old key
        att(BOB, commit_statement(BOB2.identity)),
        att(BOB2, rotation_statement(BOB.identity, None), at=T0 + 100),
    ]  # fmt: skip
    engine = TrustEngine(ME.identity, now_ms=T0 + 200, attestations=history)
    why = engine.explain(BOB2.identity)
    assert why.subject == BOB.identity  # the chain's member is its inception key
    assert why.score > 0.0
    keys = why.keys
    assert keys.current == BOB2.identity
    assert [(s.old, s.new, s.at_ms, s.how) for s in keys.chain] == [
        (BOB.identity, BOB2.identity, T0 + 100, "rotation")
    ]
    (note,) = keys.notes
    assert (note.issuer, note.subject, note.about, note.about_role) == (
        ALICE.identity, BOB.identity, BOB.identity, KeyRole.PREVIOUS,
    )  # fmt: skip
    assert note.signed_by == ALICE.identity
    assert note.signer_role is KeyRole.CURRENT
    assert note.issued_at_ms == T0 + 5


def test_a_vouch_signed_by_a_device_is_explained_as_such() -> None:
    history = [
        vouch(ME, ALICE), vouch(PHONE, BOB, at=T0 + 7),  # Alice's phone vouches for Bob
        att(ALICE, grant_statement(PHONE.identity)), att(PHONE, accept_statement(ALICE.identity)),
    ]  # fmt: skip
    engine = TrustEngine(ME.identity, now_ms=T0 + 200, attestations=history)
    why = engine.explain(BOB.identity)
    (note,) = why.keys.notes
    assert (note.issuer, note.signed_by, note.signer_role) == (
        ALICE.identity, PHONE.identity, KeyRole.DEVICE,
    )  # fmt: skip
    assert note.about == BOB.identity
    assert note.about_role is KeyRole.CURRENT
    assert not why.keys.chain
    alice = engine.explain(ALICE.identity)
    assert [d[0] for d in alice.keys.devices] == [PHONE.identity]


def test_plain_members_have_no_key_notes() -> None:
    engine = TrustEngine(ME.identity, now_ms=T0 + 1, attestations=[vouch(ME, ALICE)])
    why = engine.explain(ALICE.identity)
    assert why.keys.notes == ()
    assert why.keys.chain == ()
    assert why.keys.recoveries == ()
    assert why.keys.current == ALICE.identity


def _recovery_history(*, vetoed: bool) -> list[Attestation]:
    custodians = [C1, C2, C3]
    history = [vouch(ME, BOB), *(vouch(BOB, c) for c in custodians)]
    history += [att(BOB, s) for s in designation_statements(2, [c.identity for c in custodians])]
    history += [
        att(c, recovery_statement(BOB.identity, NEWKEY.identity), at=T0 + 1000) for c in (C1, C2)
    ]
    if vetoed:
        history.append(att(BOB, veto_statement(NEWKEY.identity), at=T0 + 2000))
    return history


def test_a_recovery_that_took_effect_is_a_step_of_the_chain() -> None:
    now = T0 + 1000 + DEFAULT_WAIT_MS
    engine = TrustEngine(ME.identity, now_ms=now, attestations=_recovery_history(vetoed=False))
    keys = engine.explain(NEWKEY.identity).keys
    (step,) = keys.chain
    assert (step.old, step.new, step.how) == (BOB.identity, NEWKEY.identity, "recovery")
    assert set(step.custodians) == {C1.identity, C2.identity}
    (recovery,) = keys.recoveries
    assert recovery.state is RecoveryState.COUNTS


def test_a_veto_that_blocked_a_recovery_is_visible() -> None:
    now = T0 + 1000 + DEFAULT_WAIT_MS
    engine = TrustEngine(ME.identity, now_ms=now, attestations=_recovery_history(vetoed=True))
    keys = engine.explain(BOB.identity).keys
    assert keys.chain == ()
    assert keys.current == BOB.identity
    (recovery,) = keys.recoveries
    assert recovery.state is RecoveryState.VETOED
    assert recovery.new == NEWKEY.identity
    assert recovery.vetoed_by == ((BOB.identity, T0 + 2000),)
    # Asked about the would-be new key, the answer still shows whose recovery it was not.
    assert engine.explain(NEWKEY.identity).subject == NEWKEY.identity


def test_a_recovery_still_waiting_says_so() -> None:
    engine = TrustEngine(
        ME.identity, now_ms=T0 + 1500, attestations=_recovery_history(vetoed=False)
    )
    (recovery,) = engine.explain(BOB.identity).keys.recoveries
    assert recovery.state is RecoveryState.WAITING
    assert recovery.effective_at_ms == T0 + 1000 + DEFAULT_WAIT_MS


def test_recoveries_signed_by_no_custodian_are_not_listed() -> None:
    """Anyone may sign `key:recover` naming Bob's key, and a farm many times over: a
    recovery none of Bob's custodians signed can never count, and listing it would
    let strangers fill Bob's explanation with lines of their choosing."""
    strangers = [IdentityKey.from_seed(bytes([n + 120]) * 32) for n in range(40)]
    history = _recovery_history(vetoed=False)
    history += [
        att(s, recovery_statement(BOB.identity, s.identity), at=T0 + 1000) for s in strangers
    ]
    engine = TrustEngine(ME.identity, now_ms=T0 + 1500, attestations=history)
    (recovery,) = engine.explain(BOB.identity).keys.recoveries
    assert recovery.new == NEWKEY.identity
    assert set(recovery.custodians) == {C1.identity, C2.identity}
