"""Single-use invites over a real session (SPEC §9.2 `redeem`, §12), on virtual
time and memory streams: the inviter binds a nonce to the first identity the
handshake proved, refuses another with `invite_used` and closes; the joiner
presents its ticket's nonce to its inviter only, and keeps a refusal."""

from __future__ import annotations

import trio
import trio.testing

from node.gossip.relay import RelayGate
from node.service.invites import (
    INVITES_CAPABILITY,
    InviteBook,
    InviteDesk,
    InviteTicket,
    open_invite_desk,
)
from protocol.identity import IdentityKey
from protocol.invite import IssuedInvite
from protocol.wire import ErrorMessage, Hello, Redeem, encode_message
from tests.node.test_gossip import T0, Member
from tests.node.test_session_rules import STRANGER, _hear_all, _refused_with, _scripted_peer

NONCE = bytes(range(16))
SOMEONE = IdentityKey.from_seed(bytes([7]) * 32).identity


def _inviter(*records: IssuedInvite) -> tuple[Member, InviteDesk, RelayGate]:
    member = Member("ann", 1)

    def clock() -> int:  # as Member's
        return T0 + int(trio.current_time() * 1000)

    gate = RelayGate(anchors=[member.key.identity], wall_clock_ms=clock)
    desk = open_invite_desk(None, gossip=member.gossip, gate=gate, wall_clock_ms=clock)
    for record in records:
        desk.book.put(record, now_ms=clock())
    return member, desk, gate


async def test_the_first_identity_binds_the_nonce_and_stays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    member, desk, gate = _inviter(IssuedInvite(nonce=NONCE, expires_at_ms=None))
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        await stream.send_all(encode_message(Hello(capabilities=(INVITES_CAPABILITY,))))
        await stream.send_all(encode_message(Redeem(nonce=NONCE)))
        await trio.sleep(1)
        assert desk.book.get(NONCE) == IssuedInvite(
            nonce=NONCE, expires_at_ms=None, used_by=STRANGER.identity
        )
        assert member.gossip.peers == [STRANGER.identity]  # still connected
        await stream.aclose()
    assert STRANGER.identity in gate.vouched(member.store)  # admitted past the quota
    assert member.gossip.protocol_errors == 0


async def test_a_second_identity_is_refused_with_invite_used(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bound = IssuedInvite(nonce=NONCE, expires_at_ms=None, used_by=SOMEONE)
    member, desk, gate = _inviter(bound)
    heard = await _refused_with(member, Hello(), Redeem(nonce=NONCE))
    hello = heard.messages[0]
    assert isinstance(hello, Hello)
    assert INVITES_CAPABILITY in hello.capabilities
    last = heard.messages[-1]
    assert isinstance(last, ErrorMessage)
    assert last.code == "invite_used"
    assert heard.clean
    assert desk.book.get(NONCE) == bound  # unchanged
    assert STRANGER.identity not in gate.vouched(member.store)
    assert not member.gossip.bans.is_banned(STRANGER.identity)  # it may connect as a member


async def test_an_expired_unused_invite_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    member, desk, _ = _inviter(IssuedInvite(nonce=NONCE, expires_at_ms=T0))
    heard = await _refused_with(member, Hello(), Redeem(nonce=NONCE))
    last = heard.messages[-1]
    assert isinstance(last, ErrorMessage)
    assert last.code == "invite_expired"
    assert desk.book.get(NONCE) == IssuedInvite(nonce=NONCE, expires_at_ms=T0)


async def test_a_nonce_never_issued_grants_nothing(autojump_clock: trio.testing.MockClock) -> None:
    member, desk, gate = _inviter()
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        await stream.send_all(encode_message(Hello()))
        await stream.send_all(encode_message(Redeem(nonce=NONCE)))
        await trio.sleep(1)
        assert member.gossip.peers == [STRANGER.identity]
        await stream.aclose()
    assert len(desk.book) == 0
    assert STRANGER.identity not in gate.vouched(member.store)


async def _joiner_hears(ticket: InviteTicket, capabilities: tuple[str, ...]) -> tuple[
    list[object], InviteDesk
]:  # fmt: skip
    """A joiner whose inviter is the scripted peer: what it sends after the inviter's
    hello, then its desk after the inviter refused with `invite_used`."""
    member = Member("ben", 2)
    desk = InviteDesk(
        InviteBook(None), ticket=ticket, wall_clock_ms=lambda: 0, admit=lambda _: None
    )
    member.gossip.extensions.append(desk)
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        await stream.send_all(encode_message(Hello(capabilities=capabilities)))
        await trio.sleep(1)
        await stream.send_all(encode_message(ErrorMessage(code="invite_used", detail="x")))
        await stream.transport_stream.send_all(stream._records.close())
        with trio.fail_after(5):
            heard = await _hear_all(stream)
        await stream.aclose()
    return list(heard.messages), desk


async def test_the_joiner_presents_to_its_inviter_and_keeps_a_refusal(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ticket = InviteTicket(inviter=STRANGER.identity, nonce=NONCE)
    heard, desk = await _joiner_hears(ticket, (INVITES_CAPABILITY,))
    assert Redeem(nonce=NONCE) in heard
    refused = InviteTicket(inviter=STRANGER.identity, nonce=NONCE, refused="invite_used")
    assert desk.ticket == refused
    assert desk.to_present(STRANGER.identity) is None  # a refused ticket is not shown again


async def test_the_joiner_shows_its_nonce_to_no_one_else(
    autojump_clock: trio.testing.MockClock,
) -> None:
    elsewhere = InviteTicket(inviter=SOMEONE, nonce=NONCE)
    heard, desk = await _joiner_hears(elsewhere, (INVITES_CAPABILITY,))
    assert not any(isinstance(m, Redeem) for m in heard)
    assert desk.ticket == elsewhere  # another peer's error says nothing about our invite
    ours = InviteTicket(inviter=STRANGER.identity, nonce=NONCE)
    heard, _ = await _joiner_hears(ours, ())  # an inviter that does not name `invites`
    assert not any(isinstance(m, Redeem) for m in heard)
