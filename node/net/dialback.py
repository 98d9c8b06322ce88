"""Dial-back probes (SPEC §15.2): did this address reach that member? And where do peers come from?

A probe dials an address and runs the community handshake only as far as the
responder's message 2: that message carries the responder's identity proof
(its Ed25519 key signing its Noise static key, under the community key), so it
shows who answered there. The prober then closes without sending message 3: the
answering node never completes the handshake, so no session starts - a
complete one would count as a second connection between the two and could
replace their real one (SPEC §11, one connection per pair).
"""

from __future__ import annotations

import nacl.utils
import trio

from node.net.addresses import format_address
from node.net.transport import new_static_key
from protocol.channel import ChannelHandshake, Community, frame_handshake_message
from protocol.handshake import KeyPair, Role
from protocol.identity import IdentityId, IdentityKey

__all__ = ["observed_address", "probe_identity"]

_RECEIVE_BYTES = 4096


async def probe_identity(
    stream: trio.abc.Stream, *, community: Community, identity_key: IdentityKey
) -> IdentityId:
    """The verified identity of the member answering on `stream`; the stream is closed.

    Callers bound it with their own deadline.

    Raises:
        RemoteProtocolError: not a member (wrong key, a bad identity proof).
        trio.BrokenResourceError, OSError: the transport failed.
    """
    handshake = ChannelHandshake(
        role=Role.INITIATOR,
        community=community,
        identity_key=identity_key,
        static=new_static_key(),
        ephemeral=KeyPair.from_private(nacl.utils.random(32)),
    )
    try:
        await stream.send_all(frame_handshake_message(handshake.start()))
        buffer = bytearray()
        while len(buffer) < 2 or len(buffer) < 2 + int.from_bytes(buffer[:2], "big"):
            data = await stream.receive_some(_RECEIVE_BYTES)
            if not data:
                raise trio.BrokenResourceError("closed during the handshake")
            buffer += data
        length = int.from_bytes(buffer[:2], "big")
        handshake.receive(bytes(buffer[2 : 2 + length]))  # verifies the identity proof
        return handshake.keys.peer  # message 3 is never sent: no session starts
    finally:
        await trio.aclose_forcefully(stream)


def observed_address(stream: trio.abc.Stream) -> str:
    """The far end of a connection as this side sees it (`host:port`), "" if unknown.

    Follows `transport_stream` down from a secure channel: a simulated stream
    names its other end, a socket stream has a peer name."""
    while True:
        remote = getattr(stream, "remote", None)
        if isinstance(remote, str):
            return remote
        sock = getattr(stream, "socket", None)
        if sock is not None:
            try:
                host, port = sock.getpeername()[:2]
            except (OSError, ValueError):
                return ""
            return format_address(str(host), int(port))
        inner = getattr(stream, "transport_stream", None)
        if not isinstance(inner, trio.abc.Stream):
            return ""
        stream = inner
