"""The name resolver: precedence, marks, impostors, hostile names, petname storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import RequestError, StoreError
from node.names import SELF_MARK, NameBook, NameSource, PetnameBook, are_confusable
from protocol.identity import IdentityId, IdentityKey, short_identity_text
from tests.strategies import labels

ME, ALICE, BOB, GRACE, MALLORY = (
    IdentityKey.from_seed(bytes([n]) * 32).identity for n in (1, 2, 3, 4, 5)
)


def _book(**parts: object) -> NameBook:
    trust = {ALICE: 0.8, BOB: 0.3, GRACE: 0.6}
    return NameBook(viewer=ME, trust=trust, **parts)  # type: ignore[arg-type]


def test_precedence_petname_then_contacts_then_self_then_id() -> None:
    full = _book(
        petnames={GRACE: "Grace (rue des Lilas)"},
        profiles={GRACE: "G"},
        given={GRACE: [(ALICE, "Gracie")]},
    )
    assert full.resolve(GRACE).source is NameSource.PETNAME
    assert full.resolve(GRACE).label == "Grace (rue des Lilas)"
    contacts = _book(profiles={GRACE: "G"}, given={GRACE: [(ALICE, "Gracie")]})
    assert contacts.resolve(GRACE).source is NameSource.CONTACTS
    assert contacts.resolve(GRACE).label == '"Gracie" per ' + short_identity_text(ALICE) + "…"
    own = _book(profiles={GRACE: "G"})
    assert own.resolve(GRACE).label == "~G"
    assert _book().resolve(GRACE).label == short_identity_text(GRACE) + "…"


def test_contact_names_are_weighted_by_my_trust_in_the_givers() -> None:
    # Alice (0.8) says "Grace"; Bob (0.3) and an unknown (0) say "Gigi": Alice wins.
    book = _book(given={GRACE: [(BOB, "Gigi"), (MALLORY, "Gigi"), (ALICE, "Grace")]})
    assert book.resolve(GRACE).name == "Grace"
    # Givers I do not trust are not heard at all.
    assert _book(given={GRACE: [(MALLORY, "Queen")]}).resolve(GRACE).source is NameSource.ID
    two = _book(petnames={ALICE: "alice"}, given={GRACE: [(BOB, "Grace"), (ALICE, "Grace")]})
    assert two.resolve(GRACE).givers[0] == "alice"
    assert two.resolve(GRACE).label.endswith("per alice +1")


@pytest.mark.parametrize(
    "impostor",
    ["Grace", "Gr\u0430ce", "GRACE", "G race", "grace", "Gracé", "Grace (rue des Lilas)"],
)
def test_a_look_alike_of_my_grace_is_flagged(impostor: str) -> None:
    book = _book(petnames={GRACE: "Grace (rue des Lilas)"}, profiles={MALLORY: impostor})
    resolved = book.resolve(MALLORY)
    assert resolved.label == SELF_MARK + impostor
    assert [i.other for i in resolved.impostors] == [GRACE]
    assert "Grace (rue des Lilas)" in resolved.impostors[0].warning
    assert not book.resolve(GRACE).impostors


def test_a_look_alike_of_a_trusted_contact_name_is_flagged() -> None:
    book = _book(
        given={GRACE: [(ALICE, "Grace")], MALLORY: [(BOB, "Gr\u0430\u0441\u0435")]}
    )  # Cyrillic a, c, e
    assert [i.other for i in book.resolve(MALLORY).impostors] == [GRACE]
    assert (
        not _book(profiles={MALLORY: "Bob"}, petnames={GRACE: "Grace"}).resolve(MALLORY).impostors
    )


def test_confusables() -> None:
    assert are_confusable("Alice", "AIice")  # capital i
    assert are_confusable("Alice", "ALICE")
    assert are_confusable("Paul", "Pau1")
    assert not are_confusable("Grace", "Bob")


@settings(deadline=None)  # the first example may load the confusables table
@given(
    petname=st.none() | st.text(min_size=1, max_size=20),
    contact=st.none() | st.text(min_size=1, max_size=20),
    self_name=st.none() | st.text(min_size=1, max_size=20),
)
def test_no_view_shows_a_self_claimed_name_without_its_mark(
    petname: str | None, contact: str | None, self_name: str | None
) -> None:
    book = _book(
        petnames={} if petname is None else {GRACE: petname},
        given={} if contact is None else {GRACE: [(ALICE, contact)]},
        profiles={} if self_name is None else {GRACE: self_name},
    )
    resolved = book.resolve(GRACE)
    if resolved.source is NameSource.SELF:
        assert resolved.label == SELF_MARK + (self_name or "")
    if petname is None and contact is None and self_name is not None:
        assert resolved.source is NameSource.SELF
    # The bare self-chosen name is shown only when it is also the name I gave.
    assert resolved.label != self_name or petname == self_name


def test_find_ranks_by_my_trust() -> None:
    book = _book(profiles={BOB: "Grace B", GRACE: "Grace"}, given={MALLORY: [(ME, "grace m")]})
    assert book.find("grace") == [GRACE, BOB, MALLORY]  # my trust: 0.6, 0.3, 0
    assert book.find("GR\u0410CE") == book.find("grace")  # a Cyrillic A reads alike
    assert book.find("   ") == []


def test_petnames_persist_and_are_unique(tmp_path: Path) -> None:
    path = tmp_path / "petnames.json"
    names = PetnameBook.load(path)
    names.set(GRACE, "Grace (rue des Lilas)")
    names.set(ALICE, "Alice")
    with pytest.raises(RequestError) as info:
        names.set(MALLORY, "Grace (rue des Lilas)")
    assert info.value.code == "conflict"
    with pytest.raises(RequestError):
        names.set(MALLORY, "AIice")  # reads like Alice
    names.set(GRACE, "Grace")  # renaming one's own entry is fine
    assert PetnameBook.load(path).as_dict() == {GRACE: "Grace", ALICE: "Alice"}
    assert names.remove(GRACE) == "Grace"
    assert PetnameBook.load(path).as_dict() == {ALICE: "Alice"}
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(
    "hostile",
    ["", "x" * 10_000, "Grace\u202e", "Grace\x1b[31m", "Gra\u200bce", " Grace", "Zoe\u0301"],
)
def test_hostile_petnames_are_refused(tmp_path: Path, hostile: str) -> None:
    with pytest.raises(RequestError) as info:
        PetnameBook(tmp_path / "p.json").set(GRACE, hostile)
    assert info.value.code == "bad_value"
    assert hostile not in str(info.value) or not hostile


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[]", b'{"format": "x"}', json.dumps({"format": "trustnode-petnames",
     "petnames": {"tn_bad": "G"}}).encode(), json.dumps({"format": "trustnode-petnames",
     "petnames": {}}).encode() + b" " * (5 * 1024 * 1024)],
)  # fmt: skip
def test_a_damaged_petname_file_is_refused_typed(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "petnames.json"
    path.write_bytes(content)
    with pytest.raises(StoreError):
        PetnameBook.load(path)


def test_identity_type() -> None:
    assert isinstance(GRACE, bytes)
    assert IdentityId(GRACE) == GRACE


@settings(deadline=None)
@given(
    petname=st.none() | labels(),
    contact=st.none() | labels(),
    self_name=st.none() | labels(),
    giver_score=st.floats(0.0, 1.0),
)
def test_precedence_is_petname_contacts_self_id(
    petname: str | None, contact: str | None, self_name: str | None, giver_score: float
) -> None:
    book = NameBook(
        viewer=ME,
        petnames={} if petname is None else {GRACE: petname},
        given={} if contact is None else {GRACE: [(ALICE, contact)]},
        profiles={} if self_name is None else {GRACE: self_name},
        trust={ALICE: giver_score},
    )
    heard = contact if giver_score > 0 else None  # a giver I do not trust is not heard
    expected = (
        (NameSource.PETNAME, petname) if petname is not None
        else (NameSource.CONTACTS, heard) if heard is not None
        else (NameSource.SELF, self_name) if self_name is not None
        else (NameSource.ID, None)
    )  # fmt: skip
    resolved = book.resolve(GRACE)
    assert (resolved.source, resolved.name) == expected
