"""Recovery by custodians (SPEC §18): the reading, and the trust engine's view of it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.trust import TrustEngine
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.devices import accept_statement, grant_statement
from protocol.identity import IdentityKey
from protocol.recovery import (
    DEFAULT_LOCK_MS,
    DEFAULT_WAIT_MS,
    MAX_WAIT_MS,
    MIN_WAIT_MS,
    custodian_set_digest,
    designation_claim,
    designation_statements,
    designation_wait,
    recovery_statement,
    veto_statement,
)
from protocol.statement import Certify, Statement, Trust
from protocol.succession import IdentityBook, commit_statement, rotation_statement

KEYS = [IdentityKey.from_seed(bytes([n + 160]) * 32) for n in range(12)]
ME, K0, K1, PHONE, THIEF, C1, C2, C3, C4, C5, BOB, T2 = KEYS
CUSTODIANS = [C1, C2, C3, C4, C5]
T0 = 1_800_000_000_000
TL = T0 + 10 * DEFAULT_LOCK_MS  # the loss: long after the designation
DONE = TL + 1000  # the third custodian's recovery
AFTER = DONE + DEFAULT_WAIT_MS


def att(key: IdentityKey, statement: Statement, *, at: int = T0) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def designate(
    root: IdentityKey, k: int, custodians: list[IdentityKey], at: int
) -> list[Attestation]:
    return [
        att(root, s, at=at) for s in designation_statements(k, [c.identity for c in custodians])
    ]


def recover(custodian: IdentityKey, new: IdentityKey, at: int = DONE) -> Attestation:
    return att(custodian, recovery_statement(K0.identity, new.identity), at=at)


def base_history() -> list[Attestation]:
    """ME vouches for K0 and K0 for its custodians; K0 designated 3 of 5 at T0; a phone."""
    history = [vouch(ME, K0), vouch(K0, BOB)]
    history += [vouch(K0, c) for c in CUSTODIANS] + [vouch(ME, c) for c in CUSTODIANS]
    history += designate(K0, 3, CUSTODIANS, T0)
    history += [att(K0, grant_statement(PHONE.identity)), att(PHONE, accept_statement(K0.identity))]
    return history


def vouch(key: IdentityKey, subject: IdentityKey, *, at: int = T0) -> Attestation:
    return att(key, Trust(subject=subject.identity, value=100), at=at)


def book_at(history: list[Attestation], now: int) -> IdentityBook:
    book = IdentityBook(now_ms=now)
    for a in history:
        book.add(a)
    return book


def test_digest_depends_on_k_and_the_set_not_its_order() -> None:
    ids = [c.identity for c in CUSTODIANS]
    assert custodian_set_digest(3, ids) == custodian_set_digest(3, list(reversed(ids)))
    assert custodian_set_digest(3, ids) != custodian_set_digest(2, ids)
    assert custodian_set_digest(3, ids) != custodian_set_digest(3, ids[:4])


def test_three_of_five_recover_after_the_wait() -> None:
    history = base_history() + [recover(c, K1, DONE - i) for i, c in enumerate([C1, C2, C3])]
    assert book_at(history, AFTER - 1).member(K1.identity) == K1.identity  # still waiting
    book = book_at(history, AFTER)
    assert book.member(K1.identity) == K0.identity
    assert book.successor(K0.identity) == (K1.identity, AFTER)
    assert not book.counts(K0.identity, AFTER)  # the lost key stops counting
    assert book.counts(K0.identity, AFTER - 1)


def test_k_minus_one_custodians_cannot_recover() -> None:
    history = base_history() + [recover(c, THIEF) for c in (C1, C2)]
    book = book_at(history, AFTER + 10 * DEFAULT_WAIT_MS)
    assert book.successor(K0.identity) is None
    assert book.member(THIEF.identity) == THIEF.identity


def test_non_custodians_do_not_count() -> None:
    history = base_history() + [recover(c, THIEF) for c in (C1, C2, BOB, ME)]
    assert book_at(history, AFTER).successor(K0.identity) is None


def test_the_members_device_vetoes_k_custodians() -> None:
    attack = [recover(c, THIEF) for c in (C1, C2, C3)]
    veto = att(PHONE, veto_statement(THIEF.identity), at=DONE + 3600_000)
    assert book_at(base_history() + attack, AFTER).successor(K0.identity) is not None
    book = book_at(base_history() + attack + [veto], AFTER)
    assert book.successor(K0.identity) is None
    (r,) = book.recovery.recoveries(AFTER, **_readers(book))  # type: ignore[arg-type]
    assert r.vetoed_by == ((PHONE.identity, DONE + 3600_000),)


def test_a_strangers_veto_does_not_count() -> None:
    history = base_history() + [recover(c, K1) for c in (C1, C2, C3)]
    history.append(att(BOB, veto_statement(K1.identity), at=DONE))
    assert book_at(history, AFTER).successor(K0.identity) == (K1.identity, AFTER)


def test_a_new_designation_waits_for_its_lock_and_can_be_vetoed() -> None:
    thief_set = [THIEF, T2, BOB]
    swap = designate(K0, 2, thief_set, TL)  # the thief, with the stolen root key
    attack = [recover(c, THIEF, TL + 10) for c in (THIEF, T2)]
    # During the lock the old designation is in force: the thief's custodians do not count.
    during = book_at(base_history() + swap + attack, TL + DEFAULT_LOCK_MS - 1)
    old = custodian_set_digest(3, [c.identity for c in CUSTODIANS])
    held = during.recovery.in_force(K0.identity, TL + DEFAULT_LOCK_MS - 1, **_readers(during))  # type: ignore[arg-type]
    assert held is not None
    assert held.digest == old
    later = TL + DEFAULT_LOCK_MS + DEFAULT_WAIT_MS
    assert book_at(base_history() + swap + attack, later).successor(K0.identity) is not None
    digest = custodian_set_digest(2, [k.identity for k in thief_set])
    veto = att(PHONE, veto_statement(digest), at=TL + 5)
    assert book_at(base_history() + swap + attack + [veto], later).successor(K0.identity) is None


def test_a_device_cannot_designate() -> None:
    history = base_history() + designate(PHONE, 1, [THIEF], T0 - 1)
    history.append(recover(THIEF, THIEF))
    book = book_at(history, AFTER + DEFAULT_LOCK_MS)
    assert book.successor(K0.identity) is None


def test_recovery_settles_a_disputed_chain() -> None:
    history = [
        *base_history(),
        att(K0, commit_statement(K1.identity), at=T0),
        att(K0, commit_statement(THIEF.identity), at=T0 + 5),  # the thief disputes
        att(THIEF, rotation_statement(K0.identity, None), at=TL),
    ]
    assert book_at(history, AFTER).successor(K0.identity) is None  # disputed (SPEC §17.3)
    history += [recover(c, T2) for c in (C3, C4, C5)]
    assert book_at(history, AFTER).successor(K0.identity) == (T2.identity, AFTER)


def _readers(book: IdentityBook) -> dict[str, object]:
    of, counts, is_root = book.base_readers()
    return {"of": of, "counts": counts, "is_root": is_root}


def test_engine_score_of_the_new_key_after_recovery() -> None:
    history = base_history() + [recover(c, K1) for c in (C1, C2, C3)]
    history.append(vouch(K1, BOB, at=AFTER + 1))
    engine = TrustEngine(ME.identity, now_ms=DONE, attestations=history)
    before = engine.score(K0.identity)
    assert engine.member(K1.identity) == K1.identity
    engine.advance(AFTER)  # the wait ends: the clock alone changes the mapping
    assert engine.member(K1.identity) == K0.identity
    assert engine.score(K1.identity) == engine.score(K0.identity)
    assert engine.score(K1.identity) >= 0.99 * before


@settings(max_examples=40, deadline=None)
@given(st.randoms(use_true_random=False), st.booleans(), st.integers(0, 3))
def test_any_arrival_order_gives_the_same_successor(
    rnd: object, vetoed: bool, custodians: int
) -> None:
    history = base_history() + [
        recover(c, K1, DONE - i) for i, c in enumerate(CUSTODIANS[:custodians])
    ]
    history += designate(K0, 1, [THIEF], DONE + 1)  # a swap whose lock ends after AFTER
    if vetoed:
        history.append(att(PHONE, veto_statement(K1.identity), at=DONE + 1))
    expected = (K1.identity, AFTER) if custodians == 3 and not vetoed else None
    shuffled = list(history)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert book_at(shuffled, AFTER).successor(K0.identity) == expected
    engine = TrustEngine(ME.identity, now_ms=AFTER)
    for a in shuffled:
        engine.add([a])
    assert (engine.member(K1.identity) == K0.identity) == (expected is not None)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(DONE - 2 * DEFAULT_WAIT_MS, AFTER + 2 * DEFAULT_LOCK_MS), min_size=1))
def test_moving_the_clock_reads_as_a_fresh_book(times: list[int]) -> None:
    """`set_now` skips work between thresholds; every step must still read as from scratch."""
    history = [*base_history(), *(recover(c, K1, DONE - i) for i, c in enumerate([C1, C2, C3]))]
    history += designate(K0, 2, [C4, C5], DONE)  # a swap whose lock ends inside the range
    history += [recover(c, T2, DONE + 5) for c in (C4, C5)]
    moving = book_at(history, times[0])
    for t in times:
        moving.set_now(t)
        fresh = book_at(history, t)
        assert moving.successor(K0.identity) == fresh.successor(K0.identity)
        assert moving.member(T2.identity) == fresh.member(T2.identity)
        assert moving.recoveries_now() == fresh.recoveries_now()
        read = fresh.recovery.recoveries(t, **_readers(fresh))  # type: ignore[arg-type]
        assert moving.recoveries_now() == tuple(read)


HOUR = 3600 * 1000


def test_a_designation_carries_its_own_wait_and_every_reader_uses_it() -> None:
    # 3 of 5 under a 96 h designation: 72 h after the third recovery, still waiting.
    history = [vouch(ME, K0), *(vouch(K0, c) for c in CUSTODIANS)]
    ids = [c.identity for c in CUSTODIANS]
    history += [att(K0, s) for s in designation_statements(3, ids, wait_ms=96 * HOUR)]
    history += [recover(c, K1) for c in (C1, C2, C3)]
    assert book_at(history, DONE + DEFAULT_WAIT_MS).successor(K0.identity) is None
    assert book_at(history, DONE + 96 * HOUR).successor(K0.identity) == (
        K1.identity, DONE + 96 * HOUR,
    )  # fmt: skip


def test_the_wait_is_bound_into_the_digest() -> None:
    ids = [c.identity for c in CUSTODIANS]
    assert custodian_set_digest(3, ids, wait_ms=96 * HOUR) != custodian_set_digest(3, ids)
    assert custodian_set_digest(3, ids, wait_ms=96 * HOUR) != custodian_set_digest(
        3, ids, wait_ms=97 * HOUR
    )
    # Statements whose claim names another wait than their digest designate nothing.
    forged = [
        att(K0, Certify(subject=s.subject, claim=s.claim[:-2] + "24", commitment=s.commitment))
        for s in designation_statements(3, ids, wait_ms=96 * HOUR)
    ]
    book = book_at(forged, T0)
    of, counts, is_root = book.base_readers()
    assert book.recovery.designations(K0.identity, of=of, counts=counts, is_root=is_root) == []


@given(suffix=st.text(alphabet="/0123456789a-", max_size=6))
def test_a_wait_suffix_is_canonical_or_refused(suffix: str) -> None:
    claim = "key:custodian/" + "ab" * 16 + suffix
    try:
        wait = designation_wait(claim)
    except ValueError:
        return
    assert wait is None or (MIN_WAIT_MS <= wait <= MAX_WAIT_MS and wait % HOUR == 0)
    assert designation_claim(bytes.fromhex("ab" * 16), wait_ms=wait) == claim


def test_waits_outside_a_day_to_a_month_are_refused() -> None:
    ids = [c.identity for c in CUSTODIANS]
    for wait in (23 * HOUR, 31 * 24 * HOUR, 96 * HOUR + 1):
        with pytest.raises(ValueError, match="24 h to 30 days"):
            designation_statements(3, ids, wait_ms=wait)


def _brute_force_changes(book_history: list[Attestation], before: int, now: int) -> bool:
    """SPEC §18.5's rule read literally: some statement's time plus some wait or lock
    a designation carries (or the defaults) lies in (min, max]."""
    book = book_at(book_history, before).recovery
    waits = {DEFAULT_LOCK_MS, DEFAULT_WAIT_MS}
    times = []
    for a in book_history:
        statement = a.statement
        if isinstance(statement, Certify) and statement.claim.startswith("key:custodian/"):
            wait = designation_wait(statement.claim)
            waits |= set() if wait is None else {wait}
            times.append(a.issued_at_ms)
        elif isinstance(statement, Certify) and statement.claim == "key:recover":
            times.append(a.issued_at_ms)
    low, high = min(before, now), max(before, now)
    expected = any(low < t + w <= high for t in times for w in waits)
    assert book.changes_between(before, now) == expected
    return expected


@settings(max_examples=60, deadline=None)
@given(
    waits=st.lists(st.integers(24, 720), max_size=4),
    offsets=st.lists(st.integers(0, 800 * HOUR), min_size=2, max_size=2),
)
def test_changes_between_is_the_rule_it_states(waits: list[int], offsets: list[int]) -> None:
    ids = [c.identity for c in CUSTODIANS]
    history = [att(K0, s, at=T0 + i * HOUR) for i, hours in enumerate(waits)
               for s in designation_statements(2, ids[:3], wait_ms=hours * HOUR)]  # fmt: skip
    history += [recover(c, K1, T0 + 5 * HOUR) for c in (C1, C2)]
    _brute_force_changes(history, T0 + offsets[0], T0 + offsets[1])


def test_changes_between_costs_no_more_for_many_distinct_waits() -> None:
    """A member can sign designations with every allowed wait (697 of them) and any
    digest (one statement each, never complete): the engine asks `changes_between`
    on every question, so its cost must not be statements x distinct waits."""
    import time

    from protocol.recovery import RecoveryBook

    book = RecoveryBook()
    for hours in range(24, 721):
        for n in range(8):
            digest = bytes([n]) + hours.to_bytes(2, "big") + bytes(29)
            claim = designation_claim(digest, wait_ms=hours * HOUR)
            book.add(att(THIEF, Certify(subject=C1.identity, claim=claim, commitment=digest)))
    started = time.process_time()
    assert not book.changes_between(T0 + 1, T0 + 2)  # nothing crosses: every slot is read
    took = time.process_time() - started
    assert took < 0.1, f"{took:.3f} s of CPU for one question"


def test_recoveries_are_read_once_until_the_book_or_a_threshold_changes() -> None:
    """`explain` lists recoveries on every question (node.trust.key_history): the
    book keeps the reading until a statement arrives or the clock crosses an
    instant where it may change, the same rule as its successors."""
    attack = [recover(c, THIEF) for c in (C1, C2, C3)]
    book = book_at(base_history() + attack, AFTER)
    first = book.recoveries_now()
    assert book.recoveries_now() is first  # kept: nothing changed
    book.set_now(AFTER + 1)  # crosses no lock or wait
    assert book.recoveries_now() is first
    book.add(att(PHONE, veto_statement(THIEF.identity), at=DONE + 3600_000))
    (vetoed,) = book.recoveries_now()
    assert vetoed.vetoed_by == ((PHONE.identity, DONE + 3600_000),)
    assert book.recoveries_now() == tuple(book.recovery.recoveries(AFTER + 1, **_readers(book)))  # type: ignore[arg-type]
