"""The inviter's invite book and the joiner's ticket (`node.service.invites`):
durable files that round-trip, refuse what we did not write, and a desk that
lets exactly one of two racing identities redeem a nonce."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from node.errors import RequestError, StoreError
from node.service import invite_book
from node.service.invite_book import KEEP_SETTLED_MS
from node.service.invites import (
    INVITES_CAPABILITY,
    INVITES_FILE,
    TICKET_FILE,
    InviteBook,
    InviteDesk,
    InviteTicket,
)
from protocol.errors import Reason, TrustnodeError, VerificationError
from protocol.identity import IdentityId, IdentityKey, encode_identity_text
from protocol.invite import Invite, IssuedInvite, sign_invite
from protocol.wire import Message, Redeem

A, B = IdentityId(bytes([1]) * 32), IdentityId(bytes([2]) * 32)
INVITER = IdentityKey.from_seed(bytes([3]) * 32)

records = st.builds(
    IssuedInvite,
    nonce=st.binary(min_size=16, max_size=16),
    expires_at_ms=st.none() | st.integers(0, 2**53 - 1),
    used_by=st.none() | st.binary(min_size=32, max_size=32).map(IdentityId),
)


@given(st.lists(records, max_size=8))
def test_the_book_round_trips_through_its_file(tmp_path_factory: pytest.TempPathFactory,
                                               made: list[IssuedInvite]) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("book") / INVITES_FILE
    book = InviteBook(path)
    for record in made:
        book.put(record, now_ms=0)
    again = InviteBook.load(path) if made else InviteBook(path)
    expected = {r.nonce: r for r in made}  # a later record of a nonce replaces the earlier
    assert {n: again.get(n) for n in expected} == expected
    assert len(again) == len(expected)
    assert again.redeemed_by() == {r.used_by for r in expected.values() if r.used_by}


def _kept(path: Path) -> list[str]:
    """The nonces (hex) the book's file holds."""
    return sorted(e["nonce"] for e in json.loads(path.read_text())["invites"])


def test_settled_invites_are_forgotten_after_thirty_days(tmp_path: Path) -> None:
    path = tmp_path / INVITES_FILE
    book = InviteBook(path)
    expired, forever, redeemed, later, last = (bytes([n]) * 16 for n in range(1, 6))
    book.put(IssuedInvite(nonce=expired, expires_at_ms=1_000), now_ms=0)
    book.put(IssuedInvite(nonce=forever, expires_at_ms=None), now_ms=0)
    book.put(IssuedInvite(nonce=redeemed, expires_at_ms=None), now_ms=0)
    book.put(IssuedInvite(nonce=redeemed, expires_at_ms=None, used_by=A), now_ms=500)
    book.put(IssuedInvite(nonce=later, expires_at_ms=None), now_ms=500 + KEEP_SETTLED_MS - 1)
    assert len(_kept(path)) == 4  # not yet: a late redeem is still answered as it should be
    book.put(IssuedInvite(nonce=last, expires_at_ms=None), now_ms=1_000 + KEEP_SETTLED_MS)
    assert _kept(path) == sorted(n.hex() for n in (forever, later, last))
    assert book.get(expired) is None
    assert book.get(redeemed) is None
    assert book.redeemed_by() == frozenset()
    assert len(InviteBook.load(path)) == 3
    assert not (tmp_path / (INVITES_FILE + ".tmp")).exists()  # written as before: atomically


def test_a_book_without_redemption_times_keeps_its_bound_invites_from_now(
    tmp_path: Path,
) -> None:
    path = tmp_path / INVITES_FILE
    invites = [
        {"nonce": "01" * 16, "expires_at_ms": 0, "used_by": None},
        {"nonce": "02" * 16, "expires_at_ms": 0, "used_by": encode_identity_text(A)},
    ]
    path.write_text(json.dumps({"format": "trustnode-invites", "version": 1, "invites": invites}))
    book = InviteBook.load(path)
    now = 10**12
    assert book.forget_settled(now) == 1  # the expired one; the bound one, from now
    assert book.redeemed_by() == {A}
    assert book.forget_settled(now + KEEP_SETTLED_MS - 1) == 0
    assert InviteBook.load(path).redeemed_by() == {A}  # its time was written down
    assert InviteBook.load(path).forget_settled(now + KEEP_SETTLED_MS) == 1
    assert _kept(path) == []


def test_the_book_keeps_at_most_max_invites(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invite_book, "MAX_INVITES", 3)
    book = InviteBook(None)
    for n in range(3):
        book.put(IssuedInvite(nonce=bytes([n]) * 16, expires_at_ms=None), now_ms=0)
    with pytest.raises(RequestError) as full:
        book.put(IssuedInvite(nonce=bytes([9]) * 16, expires_at_ms=None), now_ms=0)
    assert full.value.code == "conflict"
    book.put(IssuedInvite(nonce=bytes(16), expires_at_ms=None, used_by=A), now_ms=0)  # redeemed
    assert book.redeemed_by() == {A}


async def test_a_late_redeem_is_answered_until_the_invite_is_forgotten(tmp_path: Path) -> None:
    now = [0]
    desk = InviteDesk.in_folder(tmp_path, wall_clock_ms=lambda: now[0], admit=lambda _: None)
    nonce = bytes(range(16))
    desk.book.put(IssuedInvite(nonce=nonce, expires_at_ms=10), now_ms=0)
    now[0] = 10 + KEEP_SETTLED_MS - 1
    with pytest.raises(VerificationError) as late:
        await desk.redeem(A, nonce)
    assert late.value.reason is Reason.INVITE_EXPIRED
    now[0] += 1
    admitted: list[frozenset[IdentityId]] = []
    restarted = InviteDesk.in_folder(tmp_path, wall_clock_ms=lambda: now[0], admit=admitted.append)
    assert len(restarted.book) == 0
    assert _kept(tmp_path / INVITES_FILE) == []
    await restarted.redeem(A, nonce)  # a nonce we no longer know: ignored, grants nothing
    assert admitted == [frozenset()]


def test_missing_files_are_empty_and_damaged_ones_refused(tmp_path: Path) -> None:
    assert len(InviteBook.load(tmp_path / INVITES_FILE)) == 0
    assert InviteTicket.load(tmp_path / TICKET_FILE) is None
    for text in ("{", '{"format": "other"}', '{"format": "trustnode-invites", "invites": [{}]}',
                 '{"format": "trustnode-invites", "invites": '
                 '[{"nonce": "00", "expires_at_ms": null, "used_by": null}]}'):  # fmt: skip
        (tmp_path / INVITES_FILE).write_text(text)
        with pytest.raises(StoreError):
            InviteBook.load(tmp_path / INVITES_FILE)
        (tmp_path / TICKET_FILE).write_text(text)
        with pytest.raises(StoreError):
            InviteTicket.load(tmp_path / TICKET_FILE)


def test_a_ticket_round_trips_and_is_private(tmp_path: Path) -> None:
    ticket = InviteTicket(inviter=A, nonce=bytes(range(16)), refused="invite_used")
    ticket.save(tmp_path / TICKET_FILE)
    assert InviteTicket.load(tmp_path / TICKET_FILE) == ticket
    assert os.stat(tmp_path / TICKET_FILE).st_mode & 0o077 == 0
    assert not (tmp_path / (TICKET_FILE + ".tmp")).exists()


async def test_two_racing_identities_one_wins_and_it_is_on_disk(tmp_path: Path) -> None:
    admitted: list[frozenset[IdentityId]] = []
    desk = InviteDesk.in_folder(tmp_path, wall_clock_ms=lambda: 5, admit=admitted.append)
    nonce = bytes(range(16))
    desk.book.put(IssuedInvite(nonce=nonce, expires_at_ms=10), now_ms=5)
    outcomes: dict[IdentityId, Reason | None] = {}

    async def present(joiner: IdentityId) -> None:
        try:
            await desk.redeem(joiner, nonce)
            outcomes[joiner] = None
        except VerificationError as exc:
            outcomes[joiner] = exc.reason

    async with trio.open_nursery() as nursery:
        nursery.start_soon(present, A)
        nursery.start_soon(present, B)
    assert sorted(outcomes.values(), key=str) == [None, Reason.INVITE_USED]
    (winner,) = (j for j, r in outcomes.items() if r is None)
    assert admitted == [frozenset(), frozenset({winner})]
    # A restart (kill -9 included: the write was fsynced before the admission).
    later: list[frozenset[IdentityId]] = []
    reopened = InviteDesk.in_folder(tmp_path, wall_clock_ms=lambda: 50, admit=later.append)
    assert later == [frozenset({winner})]
    await reopened.redeem(winner, nonce)  # after expiry, the owner is still welcome
    with pytest.raises(VerificationError):
        await reopened.redeem(A if winner == B else B, nonce)


def _code(**overrides: object) -> str:
    fields: dict[str, object] = {
        "community_id": bytes(32), "community_key": None, "bootstrap": ("127.0.0.1:7401",),
        "inviter": INVITER.identity, "nonce": bytes(range(16)),
    }  # fmt: skip
    fields.update(overrides)
    return sign_invite(Invite(**fields), INVITER)  # type: ignore[arg-type]


async def test_a_member_uses_an_invite_to_its_own_community(tmp_path: Path) -> None:
    desk = InviteDesk.in_folder(tmp_path, wall_clock_ms=lambda: 5, admit=lambda _: None)
    shown: list[Message] = []

    async def send(message: Message) -> None:
        shown.append(message)

    desk.greeted(INVITER.identity, (INVITES_CAPABILITY,), None, send)  # connected already
    dialled: list[str] = []
    made = await desk.use(f"trustnode join {_code()}", community_id=bytes(32), me=A,
                          connect=dialled.append)  # fmt: skip
    assert made.inviter == INVITER.identity
    assert dialled == ["127.0.0.1:7401"]
    assert shown == [Redeem(nonce=bytes(range(16)))]  # on the live connection
    assert desk.to_present(INVITER.identity) == bytes(range(16))
    assert InviteTicket.load(tmp_path / TICKET_FILE) == desk.ticket
    await desk.use(_code(nonce=None), community_id=bytes(32), me=A, connect=dialled.append)
    assert desk.to_present(INVITER.identity) == bytes(range(16))  # a multi-use one: no ticket


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        (_code(community_id=bytes([1]) * 32), "another community"),
        (_code(expires_at_ms=5), "expired"),
        ("tninvite1_x", "bad_text"),
        ("", "invite"),
    ],
)
async def test_an_invite_a_member_cannot_use(code: str, refused: str) -> None:
    desk = InviteDesk(InviteBook(None), wall_clock_ms=lambda: 5, admit=lambda _: None)
    dialled: list[str] = []
    with pytest.raises(TrustnodeError, match=refused):
        await desk.use(code, community_id=bytes(32), me=A, connect=dialled.append)
    assert dialled == []
    assert desk.ticket is None


async def test_ones_own_invite_is_not_used() -> None:
    desk = InviteDesk(InviteBook(None), wall_clock_ms=lambda: 5, admit=lambda _: None)
    with pytest.raises(RequestError, match="your own"):
        await desk.use(_code(), community_id=bytes(32), me=INVITER.identity, connect=print)
