"""The TCP move of hole punching: a simultaneous open from the listening port.

Behind a cone-like NAT (Linux MASQUERADE, most home routers for TCP), a
connection *out* from port P opens a mapping that lets the far end's packets
in, and keeps P as the public port when it can. When two members behind such
NATs connect to each other's public address at the same moment, each side's
SYN opens its own mapping before the other's arrives, and the two SYNs cross:
TCP's simultaneous open makes one connection of them. Dialling from the port
we listen on matters: that is the port peers observed us at (dial-back's
`observed`, SPEC §15.2), so it is the one the far end aims at.

Both sockets - the listener and the dialling one - need SO_REUSEADDR and
SO_REUSEPORT to share the port (Linux refuses a bind to a listening port
otherwise). Where nothing drops an unsolicited SYN, the far side's SYN may land
on the listener instead; `PunchListener` lets the punch shell claim such a
connection. This module has the two sockets and a bounded retry; agreeing on
the moment (an RTT measured over a relayed circuit, DCUtR-style:
`protocol.punch`) and moving a session onto the connection
(`node.gossip.punching`) are SPEC §15.4.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import trio

__all__ = [
    "PunchFailedError",
    "PunchListener",
    "open_punchable_listener",
    "remote_address",
    "simultaneous_open",
]


class PunchFailedError(OSError):
    """No attempt of a simultaneous open connected."""


def _reusable(sock: trio.socket.SocketType) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):  # Linux, the BSDs, macOS
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


async def open_punchable_listener(
    host: str, port: int, *, backlog: int = 128
) -> trio.SocketListener:
    """A TCP listener whose port a `simultaneous_open` can dial from (IPv4)."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        _reusable(sock)
        await sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock)


async def simultaneous_open(
    local_port: int,
    remote: tuple[str, int],
    *,
    start_at: float,
    attempts: int = 3,
    attempt_timeout_s: float = 2.0,
    spacing_s: float = 0.2,
) -> trio.SocketStream:
    """Connect to `remote` from `local_port` at `start_at` (trio's clock), trying
    `attempts` times; the connected stream.

    Raises:
        PunchFailedError: no attempt connected (refused, timed out, unreachable).
    """
    await trio.sleep_until(start_at)
    errors: list[str] = []
    for attempt in range(attempts):
        if attempt:
            await trio.sleep(spacing_s)
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            _reusable(sock)
            await sock.bind(("0.0.0.0", local_port))  # noqa: S104 - the listening port, all interfaces
            with trio.fail_after(attempt_timeout_s):
                await sock.connect(remote)
        except (OSError, trio.TooSlowError) as error:
            sock.close()
            errors.append(
                type(error).__name__ if isinstance(error, trio.TooSlowError) else str(error)
            )
            continue
        except BaseException:  # cancelled: another address won, or a new round began
            sock.close()
            raise
        return trio.SocketStream(sock)
    raise PunchFailedError(f"no direct connection after {attempts} attempts: {'; '.join(errors)}")


def remote_address(stream: trio.abc.Stream) -> str | None:
    """`host:port` of a TCP stream's far end (IPv4), else None."""
    sock = getattr(stream, "socket", None)
    if sock is None or sock.family != socket.AF_INET:
        return None
    try:
        host, port = sock.getpeername()[:2]
    except OSError:  # reset before we looked
        return None
    return f"{host}:{port}"


class PunchListener(trio.abc.Listener[trio.abc.Stream]):
    """The node's listener, which first offers each connection to `claim`.

    Where nothing between two members drops an unsolicited SYN (no NAT, or one
    that lets it in), the SYN of a punch that leaves first lands on the other
    side's *listener*, not on its dialling socket, whose own connect then fails
    (the connection exists already). `claim` (the punch shell's) takes a
    connection from an address a punch round expects, so that it runs the
    punch's handshake with the roles fixed by identity instead of the accept
    path's responder role; `claim` returns whether it took the stream (then it
    owns it). Until `claim` is set, every connection is accepted as usual.
    """

    def __init__(self, inner: trio.abc.Listener[trio.abc.Stream]) -> None:
        self.inner = inner
        self.claim: Callable[[trio.abc.Stream], bool] | None = None

    async def accept(self) -> trio.abc.Stream:
        """The next connection that `claim` does not take."""
        while True:
            stream = await self.inner.accept()
            if self.claim is None or not self.claim(stream):
                return stream

    async def aclose(self) -> None:
        """Close the inner listener."""
        await self.inner.aclose()
