"""Ask the home router to forward our listening port (UPnP-IGD); off by default.

`[network] port_mapping = true` finds the LAN's Internet Gateway Device (SSDP
discovery), asks it to forward TCP `<its WAN address>:<our port>` to our
listening socket for `lease_s`, renews the lease at half its life, and deletes
the mapping when the node stops. A router's word is not proof: the mapped
address only becomes a candidate of the dial-back checks (SPEC §15.2), so it is
advertised once peers have reached us there - a router that maps a port but
sits behind another NAT (carrier-grade NAT, a second router) changes nothing.

The client is `miniupnpc`, the MiniUPnP project's (whose `miniupnpd` is the IGD
of OpenWrt and many home routers): maintained (2.3.3, 2025), shipped as a
manylinux wheel with no dependency, and its calls are bounded by its own
timeouts. They block, so they run in a worker thread. It speaks UPnP-IGD only:
NAT-PMP and PCP (Apple routers, some others) are not tried. It is an optional
dependency (`pip install 'trustnode[portmap]'`); without it the node runs
without a mapping and logs why.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import trio

from node.net.addresses import format_address

__all__ = ["Blocking", "IgdClient", "Mapping", "PortMapConfig", "PortMapper", "miniupnpc_client"]

log = logging.getLogger("trustnode.portmap")
_PROTOCOL = "TCP"
_T = TypeVar("_T")


async def _in_a_thread(call: Callable[[], _T]) -> _T:
    """Run a blocking IGD call in a worker thread; a cancelled wait abandons it
    (its own timeouts bound it)."""
    return await trio.to_thread.run_sync(call, abandon_on_cancel=True)


def _wan_address(text: object) -> str:
    """The router's WAN address, if it is one: an IPv4 address in dotted form (what
    IGD's GetExternalIPAddress answers). The router is a device on our LAN, not
    to be believed blindly; dial-back checks what it says anyway.

    Raises:
        LookupError: none, or not an IPv4 address.
    """
    if not isinstance(text, str) or not text:
        raise LookupError("the router does not know its WAN address")
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        raise LookupError(f"the router's WAN address is not one: {text[:64]!r}") from None


class Blocking(Protocol):
    """How the client's blocking calls are run (`_in_a_thread`)."""

    async def __call__(self, call: Callable[[], _T], /) -> _T: ...


class IgdClient(Protocol):
    """The blocking calls we make of an IGD client (miniupnpc's `UPnP`, or a test's)."""

    lanaddr: str
    discoverdelay: int

    def discover(self) -> int: ...

    def selectigd(self) -> str: ...

    def externalipaddress(self) -> str: ...

    def addportmapping(self, eport: int, proto: str, iaddr: str, iport: int, desc: str,
                       rhost: str, lease: int) -> bool: ...  # fmt: skip

    def deleteportmapping(self, eport: int, proto: str) -> bool: ...


def miniupnpc_client() -> IgdClient:
    """A `miniupnpc.UPnP`.

    Raises:
        ImportError: miniupnpc is not installed (the `portmap` extra).
    """
    import miniupnpc  # optional: imported only when port mapping is on

    client: IgdClient = miniupnpc.UPnP()
    return client


@dataclass(frozen=True, slots=True, kw_only=True)
class PortMapConfig:
    """How long a mapping lives, and how long we look for a router."""

    lease_s: int = 3600  # the router drops it after this unless renewed (at half of it)
    discover_ms: int = 2000  # SSDP: how long to wait for a router to answer
    retry_s: float = 600.0  # after a failure (no router, refused), try again after this
    description: str = "trustnode"


@dataclass(frozen=True, slots=True)
class Mapping:
    """A forwarding the router agreed to: `external` reaches `internal`."""

    external: str  # the router's WAN address and port, host:port
    internal: str  # our LAN address and listening port


class PortMapper:
    """Keeps one TCP port mapping on the LAN's IGD while `run` runs."""

    def __init__(
        self,
        port: int,
        *,
        client: Callable[[], IgdClient] = miniupnpc_client,
        config: PortMapConfig = PortMapConfig(),  # frozen: shared safely
        mapped: Callable[[Mapping | None], None] = lambda _: None,
        blocking: Blocking = _in_a_thread,
    ) -> None:
        """`port` is our listening port, asked for as the external port too;
        `mapped` hears of each mapping made, and of its loss (None); `blocking`
        runs the client's blocking calls (a worker thread; tests: inline, as a
        MockClock cannot wait for a thread)."""
        if not 0 < port < 65536:
            raise ValueError("port must be in 1..65535")
        self._port = port
        self._client = client
        self.config = config
        self._mapped = mapped
        self._blocking = blocking
        self.mapping: Mapping | None = None
        self.failures = 0  # attempts that made no mapping
        # A worker thread abandoned at the stop may still get its mapping granted
        # (a router answers slowly): it must not outlive us for the lease's hour.
        # Under `_lock`, the thread that made a mapping records its client in
        # `_granted`, unless we are `_stopping`: then it deletes it itself. The
        # stop takes `_granted` and deletes it, after waiting (bounded) for a
        # call in flight, so that it is deleted before the process exits.
        self._lock = threading.Lock()
        self._granted: IgdClient | None = None
        self._stopping = False
        self._idle = threading.Event()
        self._idle.set()

    def _map(self) -> tuple[IgdClient, Mapping]:
        """Discover the IGD and add (or renew) the mapping; in a worker thread.

        Raises:
            LookupError: we stopped before or while the router answered (a mapping
                granted meanwhile is deleted here, in the thread).
            Exception: miniupnpc raises bare `Exception`s (no device, refused, ...).
        """
        with self._lock:
            if self._stopping:
                raise LookupError("port mapping stopped")
            self._idle.clear()
        try:
            client, mapping = self._ask()
            if not self._keep(client):
                client.deleteportmapping(self._port, _PROTOCOL)
                log.info("port mapping: %s granted after the stop, deleted", mapping.external)
                raise LookupError("port mapping stopped")
            return client, mapping
        finally:
            self._idle.set()

    def _keep(self, client: IgdClient) -> bool:
        """Record `client`'s granted mapping for the stop to delete; False once stopping."""
        with self._lock:
            if self._stopping:
                return False
            self._granted = client
            return True

    def _ask(self) -> tuple[IgdClient, Mapping]:
        """The IGD calls themselves: discover, select, WAN address, add."""
        client = self._client()
        client.discoverdelay = self.config.discover_ms
        if client.discover() < 1:
            raise LookupError("no UPnP device answered on this network")
        client.selectigd()  # raises when none of them is an IGD
        host = _wan_address(client.externalipaddress())
        if not client.addportmapping(
            self._port, _PROTOCOL, client.lanaddr, self._port, self.config.description, "",
            self.config.lease_s,
        ):  # fmt: skip
            raise LookupError("the router refused the mapping")
        return client, Mapping(
            external=format_address(host, self._port),
            internal=format_address(client.lanaddr, self._port),
        )

    async def run(self) -> None:
        """Map, renew at half the lease, retry after failures; on cancellation,
        delete the mapping (bounded by the discovery timeout), even one a call
        abandoned at the stop gets granted late."""
        try:
            while True:
                try:
                    _, mapping = await self._blocking(self._map)
                except ImportError as error:  # nothing to retry: say what to install
                    log.warning("port mapping: off (%s; pip install 'trustnode[portmap]')", error)
                    return
                except Exception as error:  # noqa: BLE001 - miniupnpc raises bare Exception
                    self.failures += 1
                    if self.mapping is not None:
                        with self._lock:  # lost: the port may be another host's now
                            self._granted = None
                        self.mapping = None
                        self._mapped(None)
                    log.warning("port mapping: none (%s); next try in %.0f s",
                                error, self.config.retry_s)  # fmt: skip
                    await trio.sleep(self.config.retry_s)
                    continue
                if mapping != self.mapping:
                    log.info("port mapping: %s -> %s for %d s", mapping.external,
                             mapping.internal, self.config.lease_s)  # fmt: skip
                    self.mapping = mapping
                    self._mapped(mapping)
                await trio.sleep(max(1.0, self.config.lease_s / 2))
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(self._unmap_timeout_s):
                await self._stop()

    async def _stop(self) -> None:
        """Delete what the router granted us, once a call in flight has finished
        (the caller bounds the wait; past it, that call's thread deletes its own)."""
        with self._lock:
            self._stopping = True
        if not self._idle.is_set():  # bounded here too: its thread must not outlive the wait
            timeout_s = self._unmap_timeout_s
            await self._blocking(lambda: self._idle.wait(timeout_s))
        with self._lock:
            granted, self._granted = self._granted, None
        if granted is not None:
            await self._unmap(granted)
        self.mapping = None

    @property
    def _unmap_timeout_s(self) -> float:
        return max(1.0, math.ceil(self.config.discover_ms / 1000) + 1)

    async def _unmap(self, client: IgdClient) -> None:
        """Delete our mapping: the router would otherwise forward to us until the
        lease ends, long after we stopped listening."""
        with contextlib.suppress(Exception):
            await self._blocking(lambda: client.deleteportmapping(self._port, _PROTOCOL))
            log.info("port mapping: %s deleted", self.mapping and self.mapping.external)
        self.mapping = None
