"""Invites and key rotations (SPEC §12.2, §17): an invite moves only forward along a
member's chain, to a key that succeeded the one it names, never back to a key that
was rotated away (which may be the very key whose theft the rotation answered)."""

from __future__ import annotations

import pytest

from node.service.core import later_root_keys
from node.service.invites import InviteBook, InviteDesk, InviteTicket
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.errors import Reason, VerificationError
from protocol.identity import IdentityId, IdentityKey
from protocol.invite import IssuedInvite
from protocol.statement import Statement
from protocol.succession import IdentityBook, commit_statement, rotation_statement
from protocol.wire import Message

NONCE = bytes(range(16))
OLD, NEW = IdentityKey.generate(), IdentityKey.generate()


def _att(key: IdentityKey, statement: Statement, at: int) -> Attestation:
    body = AttestationBody(issuer=key.identity, issued_at_ms=at, statement=statement)
    return sign_attestation(body, key)


def _chain_of() -> object:
    """The chain reading a node holding OLD -> NEW (committed, then rotated) makes."""
    book = IdentityBook(now_ms=10_000)
    book.add(_att(OLD, commit_statement(NEW.identity), 1_000))
    book.add(_att(NEW, rotation_statement(OLD.identity, None), 2_000))
    assert book.successor(OLD.identity) is not None

    async def chain_of(key: IdentityId) -> frozenset[IdentityId]:
        return later_root_keys(book, key)

    return chain_of


async def test_a_binding_moves_to_the_successor_of_the_bound_key() -> None:
    admitted: list[frozenset[IdentityId]] = []
    desk = InviteDesk(InviteBook(None), wall_clock_ms=lambda: 5, admit=admitted.append,
                      chain_of=_chain_of())  # type: ignore[arg-type]  # fmt: skip
    desk.book.put(IssuedInvite(nonce=NONCE, expires_at_ms=None, used_by=OLD.identity), now_ms=0)
    await desk.redeem(NEW.identity, NONCE)
    record = desk.book.get(NONCE)
    assert record is not None
    assert record.used_by == NEW.identity


async def test_a_binding_never_moves_back_to_a_key_rotated_away() -> None:
    """The joiner rotated (perhaps because OLD was stolen): OLD redeeming again is
    someone else, refused, not admitted, and the binding stays with NEW."""
    admitted: list[frozenset[IdentityId]] = []
    desk = InviteDesk(InviteBook(None), wall_clock_ms=lambda: 5, admit=admitted.append,
                      chain_of=_chain_of())  # type: ignore[arg-type]  # fmt: skip
    desk.book.put(IssuedInvite(nonce=NONCE, expires_at_ms=None, used_by=NEW.identity), now_ms=0)
    with pytest.raises(VerificationError) as refused:
        await desk.redeem(OLD.identity, NONCE)
    assert refused.value.reason is Reason.INVITE_USED
    record = desk.book.get(NONCE)
    assert record is not None
    assert record.used_by == NEW.identity
    assert all(OLD.identity not in a for a in admitted)


async def test_a_ticket_is_never_presented_to_a_key_its_inviter_rotated_away() -> None:
    """The invite names NEW (made after the rotation); a peer proving OLD is not the
    inviter: it could redeem our nonce first itself and take our invite."""
    desk = InviteDesk(InviteBook(None), wall_clock_ms=lambda: 5, admit=lambda _: None,
                      chain_of=_chain_of())  # type: ignore[arg-type]  # fmt: skip
    desk.ticket = InviteTicket(inviter=NEW.identity, nonce=NONCE)
    sent: list[tuple[IdentityId, Message]] = []

    def link(peer: IdentityId) -> object:
        async def send(message: Message) -> None:
            sent.append((peer, message))

        return send

    desk.greeted(OLD.identity, ("invites",), None, link(OLD.identity))  # type: ignore[arg-type]
    await desk.present(OLD.identity)
    assert sent == []
    # Forward it goes: a ticket naming OLD is presented to NEW.
    desk.ticket = InviteTicket(inviter=OLD.identity, nonce=NONCE)
    desk.greeted(NEW.identity, ("invites",), None, link(NEW.identity))  # type: ignore[arg-type]
    await desk.present(NEW.identity)
    assert [p for p, _ in sent] == [NEW.identity]
