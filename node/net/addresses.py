"""Which of a node's addresses a neighbour can dial, and which peer addresses to share.

A node bound to `0.0.0.0:7400` is reachable at each of its interfaces' addresses on
port 7400, never at `0.0.0.0` (which names no host to a dialler), and `127.0.0.1`
reaches only processes on the same machine. This module owns those rules: it
classifies addresses (wildcard, loopback, dialable), works out the addresses a node
tells others (`own_addresses`: `[network] advertise`, else the bound address, else the
interfaces' addresses when bound to a wildcard) and says in words when an invite
would only work on this machine. Only `detect_host_addresses` does I/O (it reads the
interface table); everything else is pure, so peer exchange can use it in
simulations.

Interfaces are read with `psutil.net_if_addrs()`, not with the standard library:
the usual stdlib tricks fail exactly where invites matter. Connecting a UDP socket
to a documentation address needs a default route (a LAN without internet access, or
a network namespace, has none), and `getaddrinfo(gethostname())` answers whatever
`/etc/hosts` says (often `127.0.1.1`, or an address of another namespace). psutil
lists every interface with its up/down state on Linux, macOS, the BSDs and Windows.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import psutil

__all__ = [
    "MAX_OWN_ADDRESSES",
    "detect_host_addresses",
    "format_address",
    "host_of",
    "invite_warnings",
    "is_dialable",
    "is_lan_address",
    "is_local_only",
    "is_loopback_host",
    "is_wildcard_host",
    "own_addresses",
]

MAX_OWN_ADDRESSES = 8  # an invite carries at most 8 (SPEC §12)
# Documentation addresses (RFC 5737, RFC 3849): a UDP socket "connected" to them
# tells which source address the default route would use, without sending a byte.
_PROBE_V4 = ("192.0.2.1", 9)
_PROBE_V6 = ("2001:db8::1", 9)

Detect = Callable[[bool], tuple[str, ...]]


def host_of(address: str) -> str | None:
    """The host of `host:port` (IPv6 without brackets), or None if it has no port."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.removeprefix("[").removesuffix("]")


def format_address(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets (as invites and `peers` carry it)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def is_wildcard_host(host: str) -> bool:
    """`0.0.0.0`, `::` (any spelling): a place to bind, never a place to dial."""
    ip = _ip(host)
    return ip is not None and ip.is_unspecified


def is_loopback_host(host: str) -> bool:
    """`localhost` and loopback literals (`127.0.0.0/8`, `::1`): this machine only."""
    if host.lower() == "localhost":
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


def is_local_only(addresses: Iterable[str]) -> bool:
    """True when none of `addresses` can be reached from another machine.

    A node whose own addresses are all loopback (or who has none) is *local*: every
    peer that can reach it runs on the same machine, so loopback addresses mean the
    same thing to them as to it (SPEC §9.2, peer exchange).
    """
    return all(is_loopback_host(host_of(a) or "") for a in addresses)


_LAN_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
              "169.254.0.0/16", "fc00::/7", "fe80::/10")
)  # fmt: skip


def is_lan_address(address: str) -> bool:
    """Whether `host:port` is on a private network (RFC 1918, CGNAT, link-local, ULA):
    dialled there, it reaches only hosts behind the same router."""
    host = host_of(address)
    ip = _ip(host) if host is not None else None
    return ip is not None and any(ip in network for network in _LAN_NETWORKS)


def is_dialable(address: str, *, local: bool) -> bool:
    """Whether `address` is worth dialling or telling a peer about.

    Never a wildcard (dialling `0.0.0.0` reaches this machine, whoever said it) or
    port 0; a loopback address only for a `local` node (to anyone else it names the
    machine it runs on, not the peer that mentioned it). Text that is not
    `host:port` is left to the dialler (simulations name members without ports;
    a real dialler fails on it, which counts as a failed dial).
    """
    host = host_of(address)
    if host is None:
        return True  # not host:port (a simulated network's name): the dialler judges it
    if int(address.rpartition(":")[2]) == 0 or is_wildcard_host(host):
        return False
    return local or not is_loopback_host(host)


def _usable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Link-local addresses need a scope (fe80::1%eth0) that means nothing to the
    # dialler, and 169.254/16 is what a host gets when DHCP failed.
    return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast)


def _default_route_source(family: socket.AddressFamily, probe: tuple[str, int]) -> str | None:
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe_socket:
            probe_socket.connect(probe)  # UDP: picks a route, sends nothing
            return str(probe_socket.getsockname()[0])
    except OSError:
        return None  # no route of that family: fine, the interface table decides


def detect_host_addresses(ipv6: bool = False) -> tuple[str, ...]:
    """This machine's addresses that another machine may reach (IPs, no port).

    Interfaces that are up, without loopback and link-local addresses; IPv4 first
    (and IPv6 only with `ipv6`), the default route's source address first in each
    family, the rest in address order. Empty when the machine has none.
    """
    try:
        addresses = psutil.net_if_addrs()
        stats = psutil.net_if_stats()
    except (OSError, RuntimeError):
        return ()
    families = [(socket.AF_INET, _PROBE_V4)] + ([(socket.AF_INET6, _PROBE_V6)] if ipv6 else [])
    found: list[str] = []
    for family, probe in families:
        candidates: set[str] = set()
        for name, entries in addresses.items():
            if name in stats and not stats[name].isup:
                continue  # a link that is down reaches no one
            for entry in entries:
                ip = _ip(entry.address) if entry.family == family else None
                if ip is not None and _usable(ip):
                    candidates.add(str(ip))
        preferred = _default_route_source(family, probe)
        # The default route's address first: the one most likely reachable by others.
        found += sorted(candidates, key=lambda a: (a != preferred, ipaddress.ip_address(a)))
    return tuple(found)


def own_addresses(
    *, listen: str, bound: tuple[str, int] | None, advertise: tuple[str, ...], detect: Detect
) -> tuple[str, ...]:
    """The addresses this node tells others to dial: for invites and peer exchange.

    `advertise` wins when given. Otherwise the address the listener is bound to
    (`bound`, else the configured `listen` when its port is fixed): a specific host
    as itself, a wildcard (`0.0.0.0`, `::`) as the machine's detected addresses
    (`detect(ipv6)`, IPv6 too for `::`) on that port; when none is detected, the
    loopback address, which `invite_warnings` then calls out. Empty when the port
    is not known yet (`listen` on port 0 and not bound).
    """
    if advertise:
        return advertise[:MAX_OWN_ADDRESSES]
    host, port = bound if bound is not None else _split(listen)
    if port == 0:
        return ()
    if not is_wildcard_host(host):
        return (format_address(host, port),)
    ipv6 = ":" in host
    detected = tuple(format_address(ip, port) for ip in detect(ipv6))
    if detected:
        return detected[:MAX_OWN_ADDRESSES]
    return (format_address("::1" if ipv6 else "127.0.0.1", port),)


def _split(address: str) -> tuple[str, int]:
    host = host_of(address)
    if host is None:
        return "", 0
    return host, int(address.rpartition(":")[2])


def invite_warnings(addresses: tuple[str, ...], *, listen: str) -> list[str]:
    """What a person must know before handing out an invite to `addresses`.

    One warning when every address is loopback (the invite works on this machine
    only), one when the node listens on loopback while inviting others elsewhere
    (they would be told an address where nothing accepts them).
    """
    warnings = []
    listen_host = host_of(listen) or ""
    port = (addresses[0] if addresses else listen).rpartition(":")[2]
    if is_local_only(addresses):
        warnings.append(
            f"this invite only works on this machine: it carries only loopback addresses "
            f"({', '.join(addresses)}). For a neighbour, listen on every interface "
            f"(--listen 0.0.0.0:{port}) or say where they can reach you "
            "(--advertise HOST:PORT)."
        )
    elif is_loopback_host(listen_host):
        warnings.append(
            f"this node listens on {listen} only: a neighbour cannot connect to "
            f"{', '.join(addresses)} until it listens there (--listen 0.0.0.0:PORT)."
        )
    return warnings
