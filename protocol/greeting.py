"""The `hello` rule of a connection, sans-I/O: first, once, with a shared version.

Right after the handshake each side sends its `hello` as its first message,
without waiting for the other's (SPEC §9.2), so neither side can wait for the
other for ever. `Greeting` checks what the peer sends against that rule: the
first message must be a `hello`, no second one may follow, and the two version
ranges must overlap. It also turns a refusal into the `error` message that goes
before closing (SPEC §9.5). It never does I/O; the session (node/gossip) feeds it
every message and closes the connection when it raises.
"""

from __future__ import annotations

from protocol.errors import Reason, RemoteProtocolError
from protocol.wire import WIRE_VERSION, ErrorMessage, Hello, Message

__all__ = ["HELLO_TIMEOUT_S", "MAX_ERROR_DETAIL_BYTES", "Greeting", "error_message"]

MAX_ERROR_DETAIL_BYTES = 256
# How long after the handshake a side waits for the peer's hello before it ends
# the connection with `timeout` (SPEC §9.2): the handshake's own bound, so a
# peer that completes it and then stays silent cannot hold a session for ever.
HELLO_TIMEOUT_S = 10.0


class Greeting:
    """One connection's view of the peer's `hello` (SPEC §9.2)."""

    def __init__(self, *, min_version: int = WIRE_VERSION, max_version: int = WIRE_VERSION) -> None:
        self._min = min_version
        self._max = max_version
        self._version: int | None = None

    @property
    def version(self) -> int | None:
        """The wire version of the connection once the peer's hello came: the
        highest both speak."""
        return self._version

    def receive(self, message: Message) -> Hello | None:
        """Check the next message from the peer; the peer's hello if it is the one.

        Raises:
            RemoteProtocolError: `UNEXPECTED_MESSAGE` for a message before the
                hello or a second hello; `UNKNOWN_VERSION` when the peer's
                version range does not overlap ours.
        """
        greeted = self._version is not None
        if not isinstance(message, Hello):
            if not greeted:
                kind = type(message).__name__.lower()
                raise RemoteProtocolError(Reason.UNEXPECTED_MESSAGE, f"{kind} before hello")
            return None
        if greeted:
            raise RemoteProtocolError(Reason.UNEXPECTED_MESSAGE, "a second hello")
        low, high = max(self._min, message.min_version), min(self._max, message.max_version)
        if low > high:
            raise RemoteProtocolError(
                Reason.UNKNOWN_VERSION,
                f"peer speaks wire versions {message.min_version}..{message.max_version}, "
                f"we {self._min}..{self._max}",
            )
        self._version = high
        return message


def error_message(error: RemoteProtocolError) -> ErrorMessage:
    """The `error` to send before closing because of `error` (SPEC §9.5): its
    reason as the code, its text made printable ASCII and bounded as the detail."""
    text = "".join(c if " " <= c <= "~" else "?" for c in str(error))
    return ErrorMessage(code=error.reason.value, detail=text[:MAX_ERROR_DETAIL_BYTES])
