"""A plain channel for the simulations' lighter mode: no Noise, identities announced.

In one simulation process every member is ours, so proving identities and
encrypting bytes between them shows nothing a simulation asks about (how
attestations spread, what a node stores and relays) while costing a key
exchange per connection and a cipher call per message. With `channel=plain` the
members' `PeerManager` opens and serves connections with these functions
instead of the Noise ones: each side sends its 32-byte identity, then the
gossip session runs on the bare simulated stream. Everything above the channel
— gossip, reconciliation, peer exchange, relay policy — is the daemon's code.

Never for real networks: anyone could claim any identity here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from node.net.transport import DEFAULT_LIMITS, HandshakeTimeoutError, PeerStream, TransportLimits
from protocol.channel import Community
from protocol.handshake import Role
from protocol.identity import IDENTITY_BYTES, IdentityId, IdentityKey

__all__ = ["PlainStream", "open_plain_stream", "serve_plain"]


class PlainStream(PeerStream):
    """The simulated stream itself, labelled with the identity its other end announced."""

    def __init__(self, transport: trio.abc.Stream, *, peer: IdentityId) -> None:
        self.transport_stream = transport
        self.peer = peer

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send `data` as it is."""
        await self.transport_stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the transport can take more bytes."""
        await self.transport_stream.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Bytes as they arrive; b"" once the other end closed."""
        return bytes(await self.transport_stream.receive_some(max_bytes))

    async def aclose(self) -> None:
        """Close the simulated stream."""
        await self.transport_stream.aclose()


async def open_plain_stream(
    stream: trio.abc.Stream,
    *,
    role: Role,
    community: Community,
    identity_key: IdentityKey,
    timeout_s: float = DEFAULT_LIMITS.handshake_timeout_s,
) -> PeerStream:
    """Exchange identities in the clear (either role does the same).

    Raises:
        HandshakeTimeoutError: the other end did not announce itself in time.
        trio.BrokenResourceError: it closed first.
    """
    del role, community  # a simulation's members all belong
    try:
        with trio.fail_after(timeout_s):
            await stream.send_all(identity_key.identity)
            announced = b""
            while len(announced) < IDENTITY_BYTES:
                chunk = await stream.receive_some(IDENTITY_BYTES - len(announced))
                if not chunk:
                    raise trio.BrokenResourceError("closed before announcing an identity")
                announced += chunk
    except trio.TooSlowError:
        await trio.aclose_forcefully(stream)
        raise HandshakeTimeoutError("no identity announced in time") from None
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return PlainStream(stream, peer=IdentityId(announced))


async def serve_plain(
    listener: trio.abc.Listener[trio.abc.Stream],
    handler: Callable[[PeerStream], Awaitable[None]],
    *,
    community: Community,
    identity_key: IdentityKey,
    limits: TransportLimits = DEFAULT_LIMITS,
) -> None:
    """Accept connections, exchange identities, run `handler` on each; until cancelled."""

    async def serve_one(stream: trio.abc.Stream) -> None:
        try:
            plain = await open_plain_stream(
                stream, role=Role.RESPONDER, community=community, identity_key=identity_key,
                timeout_s=limits.handshake_timeout_s,
            )  # fmt: skip
        except (HandshakeTimeoutError, trio.BrokenResourceError):
            return
        async with plain:
            await handler(plain)

    await trio.serve_listeners(serve_one, [listener])
