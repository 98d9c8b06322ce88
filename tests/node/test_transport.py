"""The secure channel on trio: conformance, failures, limits (virtual time unless real TCP)."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from trio.testing import check_two_way_stream, lockstep_stream_pair, memory_stream_pair

from node.net.transport import (
    HandshakeTimeoutError,
    SecureStream,
    TransportLimits,
    open_secure_stream,
    serve_secure,
)
from protocol.channel import Community
from protocol.errors import DecodeError, Reason, RemoteProtocolError
from protocol.handshake import Role
from protocol.identity import IdentityKey

ALICE, BOB = IdentityKey.from_seed(bytes([1]) * 32), IdentityKey.from_seed(bytes([2]) * 32)
COMMUNITY = Community(id=bytes(range(32)), keys=(bytes([7]) * 32,))
OUTSIDERS = Community(id=COMMUNITY.id, keys=(bytes([8]) * 32,))


class MemoryListener(trio.abc.Listener[trio.abc.Stream]):
    """A listener whose connections are memory stream pairs."""

    def __init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[trio.abc.Stream](100)

    async def connect(self) -> trio.abc.Stream:
        client, server = memory_stream_pair()
        await self._send.send(server)
        return client

    async def accept(self) -> trio.abc.Stream:
        return await self._receive.receive()

    async def aclose(self) -> None:
        await self._receive.aclose()


async def secure_pair(
    left: trio.abc.Stream,
    right: trio.abc.Stream,
    *,
    community_left: Community = COMMUNITY,
    rekey_interval: int | None = None,
) -> tuple[SecureStream, SecureStream]:
    streams: dict[str, SecureStream] = {}

    async def side(
        name: str, stream: trio.abc.Stream, role: Role, key: IdentityKey, c: Community
    ) -> None:
        streams[name] = await open_secure_stream(
            stream, role=role, community=c, identity_key=key, rekey_interval=rekey_interval
        )

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, "a", left, Role.INITIATOR, ALICE, community_left)
        nursery.start_soon(side, "b", right, Role.RESPONDER, BOB, COMMUNITY)
    return streams["a"], streams["b"]


async def memory_secure_pair() -> tuple[SecureStream, SecureStream]:
    return await secure_pair(*memory_stream_pair(), rekey_interval=4)


async def lockstep_secure_pair() -> tuple[SecureStream, SecureStream]:
    return await secure_pair(*lockstep_stream_pair())


async def test_conforms_to_trio_two_way_stream() -> None:
    await check_two_way_stream(memory_secure_pair, lockstep_secure_pair)


async def test_peers_know_each_other_and_talk() -> None:
    a, b = await memory_secure_pair()
    assert a.peer == BOB.identity
    assert b.peer == ALICE.identity
    await a.send_all(b"x" * 200_000)
    received = bytearray()
    while len(received) < 200_000:
        received += await b.receive_some()
    assert received == b"x" * 200_000
    await a.aclose()
    assert await b.receive_some() == b""


async def test_wrong_community_key_fails_typed_on_both_sides(
    autojump_clock: trio.testing.MockClock,
) -> None:
    left, right = memory_stream_pair()
    errors: list[BaseException] = []

    async def side(stream: trio.abc.Stream, role: Role, key: IdentityKey, c: Community) -> None:
        try:
            await open_secure_stream(stream, role=role, community=c, identity_key=key, timeout_s=5)
        except (RemoteProtocolError, HandshakeTimeoutError) as exc:
            errors.append(exc)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, left, Role.INITIATOR, ALICE, OUTSIDERS)
        nursery.start_soon(side, right, Role.RESPONDER, BOB, COMMUNITY)
    reasons = sorted(e.reason.value for e in errors if isinstance(e, RemoteProtocolError))
    # The responder refuses the first message; the initiator sees the close.
    assert reasons == ["decrypt_failed", "malformed"]
    assert trio.current_time() - start < 1


async def test_silent_peer_times_out(autojump_clock: trio.testing.MockClock) -> None:
    left, _right = memory_stream_pair()  # nobody ever answers: a half-open connection
    start = trio.current_time()
    with pytest.raises(HandshakeTimeoutError):
        await open_secure_stream(
            left, role=Role.RESPONDER, community=COMMUNITY, identity_key=BOB, timeout_s=3
        )
    assert trio.current_time() - start == pytest.approx(3)


async def test_slow_loris_times_out(autojump_clock: trio.testing.MockClock) -> None:
    left, right = memory_stream_pair()

    closed_at: list[float] = []

    async def drip() -> None:
        try:
            for _ in range(100):  # a long length prefix, then its body one byte per second
                await right.send_all(b"\x01")
                await trio.sleep(1)
        except trio.BrokenResourceError:
            closed_at.append(trio.current_time())  # we hung up on the slow peer

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(drip)
        with pytest.raises(HandshakeTimeoutError):
            await open_secure_stream(
                left, role=Role.RESPONDER, community=COMMUNITY, identity_key=BOB, timeout_s=5
            )
    assert closed_at
    assert closed_at[0] - start <= 6


async def test_tampered_record_fails_and_closes() -> None:
    left, right = memory_stream_pair()
    a, b = await secure_pair(left, right)
    # Flip a bit of the next ciphertext on its way through the memory stream.
    original = left.send_stream.send_all_hook

    async def corrupt() -> None:
        data = left.send_stream.get_data_nowait()
        flipped = bytes([data[0], data[1], data[2] ^ 1]) + data[3:]
        right.receive_stream.put_data(flipped)

    left.send_stream.send_all_hook = corrupt
    await a.send_all(b"payload")
    with pytest.raises(DecodeError) as info:
        await b.receive_some()
    assert info.value.reason is Reason.DECRYPT_FAILED
    with pytest.raises(trio.BrokenResourceError):
        await b.receive_some()  # never a clean-looking end after a failure
    left.send_stream.send_all_hook = original
    await b.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await b.receive_some()


async def test_transport_eof_without_close_record_is_broken() -> None:
    left, right = memory_stream_pair()
    a, b = await secure_pair(left, right)
    await a.transport_stream.aclose()  # the TCP connection dies, no close record
    with pytest.raises(trio.BrokenResourceError):
        await b.receive_some()


def _serve_bob(
    nursery: trio.Nursery, listener: MemoryListener, limits: TransportLimits
) -> tuple[list[bytes], list[tuple[str, BaseException]]]:
    """Bob serves `listener`; returns who was served and what was refused, as they happen."""
    served: list[bytes] = []
    refused: list[tuple[str, BaseException]] = []

    async def handler(stream: SecureStream) -> None:
        served.append(stream.peer)
        await trio.sleep_forever()

    nursery.start_soon(
        lambda: serve_secure(
            listener,
            handler,
            community=COMMUNITY,
            identity_key=BOB,
            limits=limits,
            on_refused=lambda address, error: refused.append((address, error)),
        )
    )
    return served, refused


async def test_serve_secure_limits_and_refusals(autojump_clock: trio.testing.MockClock) -> None:
    listener = MemoryListener()
    limits = TransportLimits(handshake_timeout_s=2, max_connections_per_address=2)
    async with trio.open_nursery() as nursery:
        served, refused = _serve_bob(nursery, listener, limits)
        clients = []
        for _ in range(3):
            client = await listener.connect()
            clients.append(client)
        good = await open_secure_stream(
            clients[0], role=Role.INITIATOR, community=COMMUNITY, identity_key=ALICE
        )
        await trio.sleep(5)  # the silent second client times out; the third was refused
        assert served == [ALICE.identity]
        kinds = sorted(type(error).__name__ for _, error in refused)
        assert kinds == ["ConnectionRefusedError", "HandshakeTimeoutError"]
        await good.aclose()
        nursery.cancel_scope.cancel()


async def test_a_flood_of_silent_connections_cannot_hold_out_an_honest_handshake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    listener = MemoryListener()
    limits = TransportLimits(handshake_timeout_s=10, max_concurrent_handshakes=4,
                             max_connections_per_address=1000)  # fmt: skip
    async with trio.open_nursery() as nursery:
        served, refused = _serve_bob(nursery, listener, limits)
        silent = [await listener.connect() for _ in range(20)]  # they never speak
        await trio.sleep(0.1)
        honest = await open_secure_stream(
            await listener.connect(), role=Role.INITIATOR, community=COMMUNITY, identity_key=ALICE
        )
        await trio.sleep(0.1)  # the responder finishes its side
        assert served == [ALICE.identity]
        assert trio.current_time() < 1  # not after the silent ones' timeouts
        # Each newcomer evicted the oldest pending handshake: 20 + 1 arrived, 4 slots.
        evicted = [e for _, e in refused if "handshake slots full" in str(e)]
        assert len(evicted) == 21 - limits.max_concurrent_handshakes
        await honest.aclose()
        for stream in silent:
            await stream.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.slow
async def test_real_loopback_tcp() -> None:
    with trio.fail_after(20):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        echoed = trio.Event()

        async def echo(stream: SecureStream) -> None:
            data = await stream.receive_some()
            await stream.send_all(data[::-1])
            echoed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: serve_secure(listeners[0], echo, community=COMMUNITY, identity_key=BOB)
            )
            tcp = await trio.open_tcp_stream("127.0.0.1", port)
            client = await open_secure_stream(
                tcp, role=Role.INITIATOR, community=COMMUNITY, identity_key=ALICE
            )
            assert client.peer == BOB.identity
            await client.send_all(b"over real sockets")
            assert await client.receive_some() == b"stekcos laer revo"
            await echoed.wait()
            await client.aclose()
            nursery.cancel_scope.cancel()


async def test_a_send_cut_off_breaks_the_sending_side(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = await lockstep_secure_pair()
    with trio.move_on_after(1):
        await a.send_all(b"never read")  # lockstep: blocks until b reads, cancelled
    # Its record's nonce is spent: anything sent now would fail b's AEAD check
    # (a ban), so the channel refuses to send, and closes without a close record.
    with pytest.raises(trio.BrokenResourceError):
        await a.send_all(b"after")

    async def read_to_the_end() -> None:
        while await b.receive_some():
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.aclose)
        with pytest.raises((trio.BrokenResourceError, DecodeError)):
            await read_to_the_end()


async def test_a_graceful_close_waits_for_the_answer_within_a_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b = await memory_secure_pair()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.aclose_gracefully)
        await b.send_all(b"in flight")  # read and dropped by a while it waits
        assert await b.receive_some() == b""  # a's close record
        await trio.sleep(0.5)
        await b.aclose()  # the answer: a's close returns now
    assert trio.current_time() - start == pytest.approx(0.5)
    c, d = await memory_secure_pair()
    start = trio.current_time()
    await c.aclose_gracefully()  # d never answers: c waits no longer than the bound
    assert trio.current_time() - start == pytest.approx(1.0)
    assert await d.receive_some() == b""
