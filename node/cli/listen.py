"""`trustnode listen`: a minimal node that accepts secure connections and says hello.

Until the daemon exists (`trustnode run`), this lets anyone check the transport
of SPEC §10-§11 against a running process: it listens on loopback (or where it
is told), completes the community handshake, sends a wire `hello`, and reports
every peer and message on stdout, one line each. It stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from node.net.transport import DEFAULT_LIMITS, SecureStream, TransportLimits, serve_secure
from protocol.channel import Community
from protocol.errors import RemoteProtocolError
from protocol.events import NeedData
from protocol.identity import IdentityKey, encode_identity_text
from protocol.wire import ErrorMessage, Hello, MessageReader, encode_message

__all__ = ["AGENT", "run_listener"]

AGENT = "trustnode-listen/0.1"


async def _converse(stream: SecureStream, report: Callable[[str], None]) -> None:
    peer = encode_identity_text(stream.peer)
    report(f"peer {peer} connected")
    await stream.send_all(encode_message(Hello(capabilities=("push",), agent=AGENT)))
    reader = MessageReader()
    try:
        while data := await stream.receive_some():
            reader.receive_data(data)
            while not isinstance(message := reader.next_event(), NeedData):
                report(f"peer {peer} sent {type(message).__name__.lower()}")
    except RemoteProtocolError as exc:
        report(f"peer {peer} broke the protocol: {exc.reason.value}")
        await stream.send_all(encode_message(ErrorMessage(code=exc.reason.value)))
    except trio.BrokenResourceError:
        report(f"peer {peer} connection broken")
        return
    report(f"peer {peer} closed")


async def run_listener(
    *,
    host: str,
    port: int,
    community: Community,
    identity_key: IdentityKey,
    report: Callable[[str], None],
    limits: TransportLimits = DEFAULT_LIMITS,
) -> None:
    """Listen until cancelled; `report` receives one line per event."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    report(f"listening on {bound[0]}:{bound[1]} as {encode_identity_text(identity_key.identity)}")

    def refused(address: str, error: BaseException) -> None:
        reason = getattr(error, "reason", None)
        what = reason.value if reason is not None else type(error).__name__
        report(f"refused {address}: {what}")

    await serve_secure(
        listeners[0],
        lambda stream: _converse(stream, report),
        community=community,
        identity_key=identity_key,
        limits=limits,
        on_refused=refused,
    )
