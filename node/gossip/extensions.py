"""Wire messages handled outside the gossip core (SPEC §15): dial-back, circuits.

A `SessionExtension` is told of each session's hello, of each message it
`handles`, and of each session's end; `GossipNode` keeps a list of them
(`GossipNode.extensions`) and knows nothing of what they do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from node.net.transport import PeerStream
from protocol.identity import IdentityId
from protocol.wire import Message

__all__ = ["Send", "SessionExtension"]

Send = Callable[[Message], Awaitable[None]]


class SessionExtension(Protocol):
    """Handles wire messages of its own on every session (`node.gossip.reachability`,
    `node.gossip.circuits`): told of each hello, each message it `handles`, each end."""

    def greeted(self, peer: IdentityId, capabilities: tuple[str, ...],
                stream: PeerStream, send: Send) -> None: ...  # fmt: skip

    def handles(self, message: Message) -> bool: ...

    async def receive(self, peer: IdentityId, message: Message, stream: PeerStream,
                      send: Send) -> None: ...  # fmt: skip

    def ended(self, peer: IdentityId) -> None: ...
