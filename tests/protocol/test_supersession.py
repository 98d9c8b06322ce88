"""Supersession is a total order on a slot, independent of arrival order (SPEC §5)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.attestation import MAX_TIME_MS, Attestation, AttestationBody
from protocol.errors import LocalProtocolError
from protocol.statement import Kind, Revoke, Trust
from protocol.supersession import (
    is_current,
    is_expired,
    order_key,
    resolve_slot,
    slot_head,
    supersedes,
)
from tests.strategies import KEYS, sign

ALICE, BOB = KEYS[0], KEYS[1]
# Few distinct times, so that ties (broken by id) happen often.
_times = st.integers(0, 6)


@st.composite
def slot_members(draw: st.DrawFn) -> list[Attestation]:
    """Trusts and revocations of one slot (ALICE -> BOB, carpool), some expiring."""
    members = []
    for _ in range(draw(st.integers(1, 8))):
        issued_at_ms = draw(_times)
        if draw(st.booleans()):
            statement: Trust | Revoke = Trust(
                subject=BOB.identity, context="carpool", value=draw(st.integers(-100, 100))
            )
            expires = draw(st.none() | st.integers(issued_at_ms + 1, 10))
        else:
            statement = Revoke(target_kind=Kind.TRUST, subject=BOB.identity, scope="carpool")
            expires = None
        body = AttestationBody(
            issuer=ALICE.identity,
            issued_at_ms=issued_at_ms,
            expires_at_ms=expires,
            statement=statement,
        )
        members.append(sign(body))
    return members


@given(slot_members(), st.randoms(use_true_random=False), st.integers(0, 12))
def test_result_is_independent_of_arrival_order(
    members: list[Attestation], rng: object, now_ms: int
) -> None:
    shuffled = list(members)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert slot_head(shuffled) == slot_head(members)
    assert resolve_slot(shuffled, now_ms=now_ms) == resolve_slot(members, now_ms=now_ms)


@given(slot_members())
def test_order_is_total_and_strict(members: list[Attestation]) -> None:
    for a in members:
        assert not supersedes(a, a)
        for b in members:
            if a.id != b.id:
                # Exactly one of two distinct attestations supersedes the other.
                assert supersedes(a, b) != supersedes(b, a)
                for c in members:
                    if supersedes(a, b) and supersedes(b, c):
                        assert supersedes(a, c)


@given(slot_members(), st.integers(0, 12))
def test_head_decides_and_nothing_older_comes_back(members: list[Attestation], now_ms: int) -> None:
    head = slot_head(members)
    assert all(order_key(head) >= order_key(m) for m in members)
    current = resolve_slot(members, now_ms=now_ms)
    if head.kind is Kind.REVOKE or is_expired(head, now_ms=now_ms):
        assert current is None
    else:
        assert current == head
        assert is_current(head, now_ms=now_ms)


@given(slot_members(), slot_members())
def test_incremental_merge_equals_batch(
    first: list[Attestation], second: list[Attestation]
) -> None:
    # A node that saw `first` then `second` agrees with one that saw everything at once.
    merged_head = slot_head([slot_head(first), slot_head(second)])
    assert merged_head == slot_head(first + second)


def test_different_slots_are_refused() -> None:
    trust = sign(
        AttestationBody(
            issuer=ALICE.identity, issued_at_ms=1, statement=Trust(subject=BOB.identity, value=1)
        )
    )
    other = sign(
        AttestationBody(
            issuer=ALICE.identity,
            issued_at_ms=1,
            statement=Trust(subject=BOB.identity, context="carpool", value=1),
        )
    )
    assert not supersedes(other, trust)
    assert not supersedes(trust, other)
    with pytest.raises(LocalProtocolError):
        slot_head([trust, other])
    with pytest.raises(LocalProtocolError):
        slot_head([])


def test_expiry_boundary() -> None:
    att = sign(
        AttestationBody(
            issuer=ALICE.identity,
            issued_at_ms=10,
            expires_at_ms=MAX_TIME_MS,
            statement=Trust(subject=BOB.identity, value=1),
        )
    )
    assert is_current(att, now_ms=MAX_TIME_MS - 1)
    assert not is_current(att, now_ms=MAX_TIME_MS)
