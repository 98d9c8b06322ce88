"""The name index: newest statement of a slot wins, whatever order they arrive in,
and the book it keeps is handed out again only while nothing changed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from node.names.index import BOOK_TTL_MS, NameIndex
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.statement import GENERAL_CONTEXT, Kind, Profile, Revoke, Statement, Trust

ALICE, GRACE = (IdentityKey.from_seed(bytes([n]) * 32) for n in (1, 2))
T0 = 1_700_000_000_000


def _signed(key: IdentityKey, statement: Statement, at_ms: int) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at_ms, statement=statement)
    return sign_attestation(body, key)


def _history() -> list[Attestation]:
    """Alice names Grace, then vouches again without a name, then names her again,
    then revokes; Grace's profile is renamed once."""
    trust = Trust(subject=GRACE.identity, value=60, name="Grace")
    return [
        _signed(ALICE, trust, T0),
        _signed(ALICE, Trust(subject=GRACE.identity, value=60), T0 + 1),
        _signed(ALICE, Trust(subject=GRACE.identity, value=60, name="Gracie"), T0 + 2),
        _signed(
            ALICE,
            Revoke(target_kind=Kind.TRUST, subject=GRACE.identity, scope=GENERAL_CONTEXT),
            T0 + 3,
        ),
        _signed(GRACE, Profile(subject=GRACE.identity, name="G"), T0),
        _signed(GRACE, Profile(subject=GRACE.identity, name="Grace H"), T0 + 5),
    ]


@given(st.permutations(range(6)), st.integers(0, 3))
def test_the_newest_statement_of_a_slot_decides_in_any_order(
    order: list[int], trust_upto: int
) -> None:
    history = _history()
    # The trust slot's statements up to `trust_upto`, and both profiles, shuffled.
    chosen = [n for n in order if n > 3 or n <= trust_upto]
    index = NameIndex()
    index.add(history[n] for n in chosen)
    book = index.book(viewer=ALICE.identity, petnames={}, trust={}, now_ms=T0 + 10)
    expected_given = {0: "Grace", 1: None, 2: "Gracie", 3: None}[trust_upto]
    given_now = dict(book.given).get(GRACE.identity)
    if expected_given is None:
        assert given_now is None  # an unnamed vouch or a revocation names no one
    else:
        assert given_now == [(ALICE.identity, expected_given)]
    assert dict(book.profiles) == {GRACE.identity: "Grace H"}


def test_a_kept_book_is_stale_after_a_store_change_a_petname_change_or_its_ttl() -> None:
    index = NameIndex()
    book = index.book(viewer=ALICE.identity, petnames={}, trust={}, now_ms=T0)
    index.keep(book, petnames_revision=0, now_ms=T0)
    assert index.cached_book(petnames_revision=0, now_ms=T0 + 1) is book
    assert index.last_book is book
    assert index.cached_book(petnames_revision=1, now_ms=T0 + 1) is None
    assert index.cached_book(petnames_revision=0, now_ms=T0 + BOOK_TTL_MS) is None
    assert index.cached_book(petnames_revision=0, now_ms=T0 - 1) is None  # the clock went back
    index.cursor += 1  # what `follow` does when the store holds more
    assert index.cached_book(petnames_revision=0, now_ms=T0 + 1) is None
