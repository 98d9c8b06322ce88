"""The secure channel on trio: runs `protocol.channel` over any `trio.abc.Stream`.

`open_secure_stream` performs the community handshake under a deadline and
returns a `SecureStream`, itself a `trio.abc.Stream` (as trio's `SSLStream`
drives a memory-BIO TLS object), so everything above it - wire messages, sync
sessions - is written against plain streams and tested on memory streams.
`serve_secure` accepts connections with the limits of DESIGN §5: a handshake
timeout, a bound on concurrent handshakes and on connections per address.

Failures are typed: a peer that breaks the protocol raises the protocol's
`RemoteProtocolError` (with its reason) and its connection is closed; a
deadline raises `HandshakeTimeoutError`; transport failures stay trio's own.
"""

from __future__ import annotations

import abc
import operator
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import nacl.utils
import trio

from node.net.conflicts import ConflictDetector
from protocol.channel import (
    LENGTH_BYTES,
    ChannelHandshake,
    ChannelRecords,
    Community,
    frame_handshake_message,
)
from protocol.errors import DecodeError, Reason, RemoteProtocolError, TrustnodeError
from protocol.events import EndOfStream, NeedData
from protocol.handshake import KeyPair, Role
from protocol.identity import IdentityId, IdentityKey

__all__ = [
    "DEFAULT_LIMITS",
    "HandshakeTimeoutError",
    "OpenChannel",
    "PeerStream",
    "SecureStream",
    "ServeChannel",
    "TransportLimits",
    "new_static_key",
    "open_secure_stream",
    "serve_secure",
]

_RECEIVE_BYTES = 65536
_DEFAULT_HANDSHAKE_TIMEOUT_S = 10.0
_CLOSE_TIMEOUT_S = 1.0


class HandshakeTimeoutError(TrustnodeError):
    """The peer did not complete the handshake in time (slow or silent)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportLimits:
    """Safe defaults against slow-loris peers and connection floods."""

    handshake_timeout_s: float = _DEFAULT_HANDSHAKE_TIMEOUT_S
    max_concurrent_handshakes: int = 64
    max_connections_per_address: int = 8


DEFAULT_LIMITS = TransportLimits()


def new_static_key() -> KeyPair:
    """A fresh X25519 key for this node's Noise static identity (from libsodium)."""
    return KeyPair.from_private(nacl.utils.random(32))


class PeerStream(trio.abc.Stream):
    """A byte stream to a community member whose identity (`peer`) the channel
    established: what the gossip layer runs its sessions on."""

    peer: IdentityId

    @abc.abstractmethod
    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Some bytes from the peer, or b"" once it closed (always `bytes`)."""

    async def aclose_gracefully(self) -> None:
        """End the connection cleanly, waiting briefly for the peer's answer
        where the channel has one (SPEC §11); plain `aclose` here."""
        await self.aclose()


class OpenChannel(Protocol):
    """Turns a connection we made or accepted into a `PeerStream` (`open_secure_stream`)."""

    async def __call__(
        self,
        stream: trio.abc.Stream,
        *,
        role: Role,
        community: Community,
        identity_key: IdentityKey,
        timeout_s: float = ...,
    ) -> PeerStream: ...


class ServeChannel(Protocol):
    """Accepts connections and hands each `PeerStream` to `handler` (`serve_secure`)."""

    async def __call__(
        self,
        listener: trio.abc.Listener[trio.abc.Stream],
        handler: Callable[[PeerStream], Awaitable[None]],
        *,
        community: Community,
        identity_key: IdentityKey,
        limits: TransportLimits = ...,
    ) -> None: ...


class SecureStream(PeerStream):
    """An authenticated, encrypted byte stream to a peer whose identity we verified."""

    def __init__(
        self, transport: trio.abc.Stream, records: ChannelRecords, *, peer: IdentityId
    ) -> None:
        self.transport_stream = transport
        self.peer = peer
        self._records = records
        self._plaintext = bytearray()
        self._closed = False
        self._eof = False
        self._failed = False
        # A send that did not complete (cancelled, or the transport failed) used
        # up record nonces the peer never saw, or left half a record on the wire:
        # whatever we sent after it would fail the peer's AEAD check (a ban).
        self._send_broken = False
        self._send_guard = ConflictDetector("sending")
        self._receive_guard = ConflictDetector("receiving")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt and send `data`; waits until the transport took all of it."""
        with self._send_guard:
            self._check_open()
            if self._send_broken:
                raise trio.BrokenResourceError("an earlier send did not complete")
            if not data:
                await trio.lowlevel.checkpoint()
                return
            records = self._records.encrypt(bytes(data))
            try:
                await self.transport_stream.send_all(records)
            except BaseException:
                self._send_broken = True
                raise

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the transport can take more bytes."""
        with self._send_guard:
            self._check_open()
            await self.transport_stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Some plaintext, or b"" after the peer's close record.

        Raises:
            RemoteProtocolError: a record fails to decrypt or is malformed; the
                stream is closed.
            trio.BrokenResourceError: the transport ended without a close record
                (possibly a truncation attack).
        """
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        with self._receive_guard:
            self._check_open()
            if self._failed:
                raise trio.BrokenResourceError("the channel failed a protocol check")
            while not self._plaintext and not self._eof:
                await self._fill()
            if not self._plaintext:
                await trio.lowlevel.checkpoint()
                return b""
            size = len(self._plaintext) if max_bytes is None else max_bytes
            if size >= len(self._plaintext):
                chunk, self._plaintext = bytes(self._plaintext), bytearray()
            else:
                chunk = bytes(self._plaintext[:size])
                del self._plaintext[:size]
            return chunk

    async def _fill(self) -> None:
        event = self._next_event()
        if isinstance(event, EndOfStream):
            self._eof = True
        elif isinstance(event, NeedData):
            data = await self.transport_stream.receive_some(_RECEIVE_BYTES)
            self._check_open()
            if not data:
                raise trio.BrokenResourceError("the peer closed without a close record")
            self._records.receive_data(bytes(data))
        else:
            self._plaintext += event
            # Decrypt every complete record already here: one wake-up, one return.
            while isinstance(event := self._next_event(), bytes):
                self._plaintext += event
            if isinstance(event, EndOfStream):
                self._eof = True

    def _next_event(self) -> bytes | NeedData | EndOfStream:
        try:
            return self._records.next_event()
        except RemoteProtocolError:
            # Nothing more can be read from a broken channel: later reads raise
            # BrokenResourceError (never a clean-looking b""); the caller's
            # `aclose` (or async with) still closes the transport.
            self._failed = True
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the secure stream is closed")

    async def aclose(self) -> None:
        """Send the close record (best effort) and close the transport."""
        await self._close(wait_for_peer=False)

    async def aclose_gracefully(self) -> None:
        """Send the close record, wait briefly for the peer's (SPEC §11), close the transport.

        Best effort, within `_CLOSE_TIMEOUT_S`: a peer that neither reads nor
        answers delays us no longer. Waiting for its answer (reading and
        discarding what comes before it) matters on TCP: closing a socket with
        unread data makes the kernel reset the connection, and the peer may then
        lose our last messages (the `error` that says why) before reading them.
        """
        await self._close(wait_for_peer=True)

    async def _close(self, *, wait_for_peer: bool) -> None:
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            # Not shielded: when we are cancelled (aclose_forcefully) the peer
            # simply sees the transport end without a close record. After a send
            # that did not complete, a close record would read as tampering.
            if not self._send_broken:
                with trio.move_on_after(_CLOSE_TIMEOUT_S):
                    await self.transport_stream.send_all(self._records.close())
                    if wait_for_peer:
                        await self._wait_peer_close()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            pass  # the peer is gone or a send is in flight: closing is all we can do
        finally:
            await self.transport_stream.aclose()

    async def _wait_peer_close(self) -> None:
        """Read and drop records until the peer's close record or the transport's end."""
        while not self._eof and not self._failed:
            try:
                event = self._records.next_event()
            except RemoteProtocolError:
                return  # a broken channel: nothing to wait for
            if isinstance(event, EndOfStream):
                return
            if isinstance(event, NeedData):
                data = await self.transport_stream.receive_some(_RECEIVE_BYTES)
                if not data:
                    return
                self._records.receive_data(bytes(data))


async def _receive_exactly(stream: trio.abc.Stream, size: int, buffer: bytearray) -> bytes:
    while len(buffer) < size:
        data = await stream.receive_some(_RECEIVE_BYTES)
        if not data:
            raise DecodeError(Reason.MALFORMED, "the peer closed during the handshake")
        buffer += data
    message = bytes(buffer[:size])
    del buffer[:size]
    return message


async def _receive_handshake_message(stream: trio.abc.Stream, buffer: bytearray) -> bytes:
    length = int.from_bytes(await _receive_exactly(stream, LENGTH_BYTES, buffer), "big")
    return await _receive_exactly(stream, length, buffer)


async def _run_handshake(
    stream: trio.abc.Stream, handshake: ChannelHandshake, role: Role, buffer: bytearray
) -> None:
    if role is Role.INITIATOR:
        await stream.send_all(frame_handshake_message(handshake.start()))
    while not handshake.is_complete:
        reply = handshake.receive(await _receive_handshake_message(stream, buffer))
        if reply:
            await stream.send_all(frame_handshake_message(reply))


async def open_secure_stream(
    stream: trio.abc.Stream,
    *,
    role: Role,
    community: Community,
    identity_key: IdentityKey,
    static: KeyPair | None = None,
    timeout_s: float = _DEFAULT_HANDSHAKE_TIMEOUT_S,
    rekey_interval: int | None = None,
) -> SecureStream:
    """Run the community handshake on `stream` and return the secure channel.

    On any failure the stream is closed before the error propagates.

    Raises:
        RemoteProtocolError: wrong community key, tampering, replay or a bad
            identity proof (see `protocol.channel`).
        HandshakeTimeoutError: not complete within `timeout_s`.
        trio.BrokenResourceError: the transport failed.
    """
    handshake = ChannelHandshake(
        role=role,
        community=community,
        identity_key=identity_key,
        static=static if static is not None else new_static_key(),
        ephemeral=KeyPair.from_private(nacl.utils.random(32)),
    )
    buffer = bytearray()
    try:
        with trio.fail_after(timeout_s):
            await _run_handshake(stream, handshake, role, buffer)
    except trio.TooSlowError:
        await trio.aclose_forcefully(stream)
        raise HandshakeTimeoutError(f"handshake not complete after {timeout_s} s") from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    keys = handshake.keys
    options = {} if rekey_interval is None else {"rekey_interval": rekey_interval}
    records = ChannelRecords(keys, **options)
    if buffer:
        records.receive_data(bytes(buffer))  # the peer may already have sent records
    return SecureStream(stream, records, peer=keys.peer)


ConnectionHandler = Callable[[SecureStream], Awaitable[None]]


def _address_of(stream: trio.abc.Stream) -> str:
    remote = getattr(stream, "remote", None)
    if isinstance(remote, str):
        return remote  # a simulated stream names its other end
    socket = getattr(stream, "socket", None)
    if socket is None:
        return "memory"
    try:
        return str(socket.getpeername()[0])
    except OSError:
        return "unknown"


async def serve_secure(
    listener: trio.abc.Listener[trio.abc.Stream],
    handler: ConnectionHandler,
    *,
    community: Community,
    identity_key: IdentityKey,
    limits: TransportLimits = DEFAULT_LIMITS,
    on_refused: Callable[[str, BaseException], None] | None = None,
) -> None:
    """Accept connections, run the handshake under the limits, then call `handler`.

    A connection over the per-address limit, or one that fails or stalls its
    handshake, is closed and reported to `on_refused(address, error)`; others
    keep being served. Runs until cancelled.
    """
    # Handshakes in progress, oldest first. When all slots are taken, a new
    # connection evicts the oldest pending handshake instead of queueing behind
    # it: silent connections from many addresses then cannot hold the door shut
    # for the handshake timeout, an honest handshake (a few round trips) is only
    # lost if `max_concurrent_handshakes` newer connections arrive meanwhile,
    # and the number of pending handshakes is bounded whatever comes in.
    pending: dict[object, trio.CancelScope] = {}
    per_address: Counter[str] = Counter()
    static = new_static_key()

    async def serve_one(stream: trio.abc.Stream) -> None:
        address = _address_of(stream)
        if per_address[address] >= limits.max_connections_per_address:
            await trio.aclose_forcefully(stream)
            if on_refused is not None:
                on_refused(address, ConnectionRefusedError("too many connections"))
            return
        per_address[address] += 1
        token = object()
        secure: SecureStream | None = None
        try:
            with trio.CancelScope() as scope:
                if len(pending) >= limits.max_concurrent_handshakes:
                    pending.pop(next(iter(pending))).cancel()
                pending[token] = scope
                secure = await open_secure_stream(
                    stream,
                    role=Role.RESPONDER,
                    community=community,
                    identity_key=identity_key,
                    static=static,
                    timeout_s=limits.handshake_timeout_s,
                )
        except (RemoteProtocolError, HandshakeTimeoutError, trio.BrokenResourceError) as exc:
            per_address[address] -= 1
            if on_refused is not None:
                on_refused(address, exc)
            return
        finally:
            pending.pop(token, None)
        if secure is None:  # evicted by a newer connection
            per_address[address] -= 1
            await trio.aclose_forcefully(stream)
            if on_refused is not None:
                on_refused(address, ConnectionRefusedError("handshake slots full"))
            return
        try:
            async with secure:
                await handler(secure)
        finally:
            per_address[address] -= 1

    await trio.serve_listeners(serve_one, [listener])
