"""How a node reaches its peers: TCP for the daemon, a `SimNetwork` place for simulations.

The assembly (`node.service.assemble`) takes any `Network`: something that
dials `host:port`-like addresses and opens one listener. The node above it
never learns which one it has, so the simulations run the daemon's code path
from the peer manager down, and only the streams differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import trio

from node.errors import ConfigError
from node.home.config import parse_address
from node.net.addresses import format_address
from node.net.punch import open_punchable_listener
from node.net.simnet import SimNetwork

__all__ = ["Listening", "Network", "SimPlace", "TcpNetwork", "dial_tcp"]

_DIAL_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Listening:
    """An open listener, with where it listens.

    `bound` is the (host, port) a TCP listener got (a port 0 becomes a real
    one); `advertise` is what peers should dial when the network knows it
    better than the node's configuration (a simulated member's name).
    """

    listener: trio.abc.Listener[trio.abc.Stream]
    address: str
    bound: tuple[str, int] | None = None
    advertise: tuple[str, ...] | None = None


class Network(Protocol):
    """Where a node dials and listens."""

    async def dial(self, address: str) -> trio.abc.Stream:
        """A stream to `address`; every failure is an `OSError`."""
        ...

    async def listen(self) -> Listening:
        """Open the node's one listener.

        Raises:
            ConfigError: it cannot listen where it is configured to.
        """
        ...


async def dial_tcp(address: str) -> trio.abc.Stream:
    """Open a TCP connection to `host:port` (addresses may come from peers: all
    failures, a malformed address included, are `OSError`)."""
    try:
        host, port = parse_address(address)
    except ConfigError as exc:
        raise OSError(str(exc)) from None
    with trio.move_on_after(_DIAL_TIMEOUT_S):
        try:
            return await trio.open_tcp_stream(host, port)
        except (UnicodeError, ValueError) as exc:  # e.g. a host name IDNA refuses
            raise OSError(f"cannot dial {address!r:.80}: {exc}") from None
    raise OSError(f"connecting to {address} timed out")


class TcpNetwork:
    """The daemon's network: TCP, listening on `listen` (`[network] listen`)."""

    def __init__(self, listen: str, *, punchable: bool = False) -> None:
        """`punchable`: the listener shares its port with punch dials (SO_REUSEPORT,
        SPEC §15.4; IPv4 only), so they leave from the port peers know us at."""
        self._listen = listen
        self._punchable = punchable

    async def dial(self, address: str) -> trio.abc.Stream:
        """See `dial_tcp`."""
        return await dial_tcp(address)

    async def listen(self) -> Listening:
        """Listen on the first address `listen` resolves to (the others are closed)."""
        host, port = parse_address(self._listen, what="[network] listen")
        if self._punchable and ":" not in host:
            return await self._listen_punchable(host, port)
        try:
            listeners = await trio.open_tcp_listeners(port, host=host)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self._listen}: {exc.strerror}") from None
        bound_host, bound_port = listeners[0].socket.getsockname()[:2]
        for extra in listeners[1:]:
            await extra.aclose()
        return Listening(
            listener=listeners[0],
            address=format_address(bound_host, bound_port),
            bound=(bound_host, bound_port),
        )

    async def _listen_punchable(self, host: str, port: int) -> Listening:
        try:
            listener = await open_punchable_listener(host, port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self._listen}: {exc.strerror}") from None
        bound_host, bound_port = listener.socket.getsockname()[:2]
        return Listening(
            listener=listener,
            address=format_address(bound_host, bound_port),
            bound=(bound_host, bound_port),
        )


class SimPlace:
    """One member's place on a `SimNetwork`: its name is its address."""

    def __init__(self, net: SimNetwork, name: str) -> None:
        self.net = net
        self.name = name

    async def dial(self, address: str) -> trio.abc.Stream:
        """A simulated connection from this member to `address`."""
        return await self.net.connect(self.name, address)

    async def listen(self) -> Listening:
        """Listen under the member's name; peers dial that name."""
        return Listening(
            listener=self.net.listen(self.name), address=self.name, advertise=(self.name,)
        )
