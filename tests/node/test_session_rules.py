"""What a session does with refused items and broken rules (SPEC §9.2, §11), on
virtual time: the table of node/policy applied, an `error` then a close record."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import trio
import trio.testing
from trio.testing import memory_stream_pair

from node.net.simnet import SimNetwork
from node.net.transport import SecureStream, open_secure_stream
from protocol.attestation import attestation_id
from protocol.events import NeedData
from protocol.greeting import HELLO_TIMEOUT_S
from protocol.handshake import Role
from protocol.identity import IdentityKey
from protocol.wire import ErrorMessage, Hello, Message, MessageReader, Prune, Push, encode_message
from simulations.convergence import COMMUNITY, link
from tests.node.test_gossip import Member

STRANGER = IdentityKey.from_seed(bytes([9]) * 32)


@dataclass
class Heard:
    """What a scripted peer read from the node until the connection ended."""

    messages: list[Message]
    clean: bool  # ended by a close record (SPEC §11), not a bare transport end


async def _scripted_peer(nursery: trio.Nursery, member: Member) -> SecureStream:
    """A secure connection to `member`'s gossip (which serves it as dialled to)
    over memory streams; the caller speaks for the other side."""
    ours, theirs = memory_stream_pair()

    async def serve() -> None:
        secure = await open_secure_stream(
            theirs, role=Role.RESPONDER, community=COMMUNITY, identity_key=member.key
        )
        await member.gossip.run_session(secure, initiator=False)

    nursery.start_soon(serve)
    return await open_secure_stream(
        ours, role=Role.INITIATOR, community=COMMUNITY, identity_key=STRANGER
    )


async def _hear_all(stream: SecureStream) -> Heard:
    reader, messages = MessageReader(), []
    try:
        while data := await stream.receive_some():
            reader.receive_data(data)
            while not isinstance(message := reader.next_event(), NeedData):
                messages.append(message)
    except trio.BrokenResourceError:
        return Heard(messages=messages, clean=False)
    return Heard(messages=messages, clean=True)


async def _refused_with(member: Member, *sent: Message) -> Heard:
    """Send `sent` after the handshake; what the node said until it closed."""
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        for message in sent:
            await stream.send_all(encode_message(message))
        with trio.fail_after(10):
            heard = await _hear_all(stream)
        await stream.aclose()
    return heard


def _error_code(heard: Heard) -> str:
    last = heard.messages[-1]
    assert isinstance(last, ErrorMessage)
    return last.code


@pytest.mark.parametrize(
    ("sent", "code"),
    [
        ((Hello(min_version=2, max_version=3),), "unknown_version"),
        ((Prune(),), "unexpected_message"),
        ((Hello(), Hello()), "unexpected_message"),
    ],
    ids=["versions-do-not-overlap", "prune-before-hello", "second-hello"],
)
async def test_hello_rules_are_enforced_with_an_error(
    autojump_clock: trio.testing.MockClock, sent: tuple[Message, ...], code: str
) -> None:
    member = Member("a", 1)
    heard = await _refused_with(member, *sent)
    assert isinstance(heard.messages[0], Hello)  # its own hello came first all the same
    assert _error_code(heard) == code
    assert heard.clean  # then the close record (SPEC §11): not a truncation
    assert member.gossip.protocol_errors == 1
    assert member.gossip.peers == []


async def test_a_close_record_is_answered_with_one(autojump_clock: trio.testing.MockClock) -> None:
    member = Member("a", 1)
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        await stream.send_all(encode_message(Hello()))
        await trio.sleep(1)
        # Our close record, sent without closing the transport, as a peer that
        # waits for the answer does it.
        await stream.transport_stream.send_all(stream._records.close())
        with trio.fail_after(5):
            heard = await _hear_all(stream)
        assert heard.clean
        assert [type(m) for m in heard.messages][:1] == [Hello]
        assert not any(isinstance(m, ErrorMessage) for m in heard.messages)
        await stream.aclose()
    assert member.gossip.protocol_errors == 0


async def test_a_session_cancelled_ends_with_a_close_record(
    autojump_clock: trio.testing.MockClock,
) -> None:
    member = Member("a", 1)
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        await stream.send_all(encode_message(Hello()))
        await trio.sleep(1)
        nursery.cancel_scope.cancel()  # the node shuts down
        with trio.CancelScope(shield=True), trio.fail_after(5):
            heard = await _hear_all(stream)
            await stream.aclose()
    assert heard.clean


def _newer_version(envelope: bytes) -> bytes:
    # 0x92, fixarray(8), then the version as a fixint: 1 becomes 2.
    assert envelope[2] == 0x01
    return envelope[:2] + b"\x02" + envelope[3:]


async def test_an_envelope_of_a_newer_version_is_dropped_not_the_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=21)
    a, b = Member("a", 1), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        newer, valid = _newer_version(b.attest(a, 1).data), b.attest(a, 2).data
        await b.gossip._peers[a.key.identity].send(Push(envelopes=(newer, valid)))
        await trio.sleep(5)
        # Benign, like from_future: the item is dropped, the rest kept, the link stays.
        assert a.gossip.peers == [b.key.identity]
        assert a.gossip.protocol_errors == 0
        assert a.store.contains(attestation_id(valid))
        assert not a.store.contains(attestation_id(newer))
        nursery.cancel_scope.cancel()


async def test_a_refused_connection_ends_with_a_close_record(
    autojump_clock: trio.testing.MockClock,
) -> None:
    member = Member("a", 1)
    member.gossip.bans.ban(STRANGER.identity)
    heard = await _refused_with(member)
    assert heard.messages == []  # refused at once: no hello, no session
    assert heard.clean


async def test_a_peer_that_never_says_hello_is_closed_after_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # It used to hold the session (and its slot among the peers) for ever.
    member = Member("a", 1)
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        start = trio.current_time()
        await trio.sleep(HELLO_TIMEOUT_S - 0.5)
        assert member.gossip.peers == [STRANGER.identity]  # not before the timeout
        with trio.fail_after(5):
            heard = await _hear_all(stream)
        assert trio.current_time() - start == pytest.approx(HELLO_TIMEOUT_S, abs=0.1)
        await stream.aclose()
    assert isinstance(heard.messages[0], Hello)
    assert _error_code(heard) == "timeout"
    assert heard.clean  # error, then the close record (SPEC §9.5, §11)
    assert member.gossip.peers == []


async def test_a_hello_just_in_time_keeps_the_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    member = Member("a", 1)
    async with trio.open_nursery() as nursery:
        stream = await _scripted_peer(nursery, member)
        await trio.sleep(HELLO_TIMEOUT_S - 0.5)
        await stream.send_all(encode_message(Hello()))
        await trio.sleep(3 * HELLO_TIMEOUT_S)
        assert member.gossip.peers == [STRANGER.identity]
        assert member.gossip.protocol_errors == 0
        nursery.cancel_scope.cancel()
