"""LAN discovery: members on one network segment find each other with no address configured.

Each node sends a sealed beacon (`protocol.beacon`, SPEC §15) to an IPv4
multicast group every `interval_s` (jittered, so a segment full of nodes does
not beacon in lockstep), and reads the beacons of others. A beacon it can open
names the TCP port at the datagram's source address: that address goes to the
peer manager as *hearsay*, like peer exchange; only the handshake confirms
that a member is there.

Why multicast and not mDNS (`zeroconf`): an mDNS service record is public by
design - its name and TXT record are readable by anyone on the segment, which
is what the issue forbids (membership must not leak) - and would add a
dependency whose platform quirks (the mDNS responder already bound to 5353 on
many desktops) are the failures users of other systems report. A sealed
59-byte datagram to our own group and port needs only the socket module.

Abuse bounds: beacons are read through a token bucket (`max_per_s`, then
dropped unread), and one address is handed to the peer manager at most once per
`relearn_s`, so a flood of beacons - even forged by a key holder - costs a few
decryptions and at most one dial attempt per address and interval. A node
without the community key learns nothing from beacons and cannot link two of
them (`protocol.beacon`).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass

import nacl.utils
import trio

from node.net.addresses import format_address, is_wildcard_host
from protocol.beacon import (
    BEACON_BYTES,
    INSTANCE_BYTES,
    NONCE_BYTES,
    Beacon,
    open_beacon,
    seal_beacon,
)
from protocol.channel import Community
from protocol.errors import DecodeError, LocalProtocolError

__all__ = ["DEFAULT_GROUP", "LanConfig", "LanDiscovery"]

log = logging.getLogger("trustnode.lan")
DEFAULT_GROUP = "239.255.76.78:7402"  # organisation-local scope (RFC 2365)
_MAX_REMEMBERED = 1024  # addresses whose last hand-over time we keep


@dataclass(frozen=True, slots=True, kw_only=True)
class LanConfig:
    """Where and how often to beacon, and how much of others' beacons to read."""

    group: str = "239.255.76.78"
    port: int = 7402
    # The IPv4 address of the interface to announce on and listen to; 0.0.0.0:
    # the one the kernel picks (the default route's). A node listening on a
    # specific address announces on that address's interface.
    interface: str = "0.0.0.0"  # noqa: S104 - an interface to choose, not a bind
    interval_s: float = 5.0
    jitter: float = 0.3
    max_per_s: float = 20.0  # beacons read per second, on average
    burst: float = 40.0
    relearn_s: float = 30.0
    ttl: int = 1  # one segment: a beacon never crosses a router

    def __post_init__(self) -> None:
        if not 0.5 <= self.interval_s <= 3600:
            raise LocalProtocolError("lan interval_s must be in 0.5..3600")
        if not 1 <= self.port <= 65535:
            raise LocalProtocolError("lan port must be in 1..65535")


class LanDiscovery:
    """Announces this node on the segment and hands others' addresses to `learn`."""

    def __init__(
        self,
        *,
        community: Community,
        tcp_port: int,
        learn: Callable[[str], None],
        wall_clock_ms: Callable[[], int],
        rng: random.Random,
        config: LanConfig = LanConfig(),
    ) -> None:
        self._community = community
        self._tcp_port = tcp_port
        self._learn = learn
        self._clock_ms = wall_clock_ms
        self._rng = rng
        self._config = config
        self.instance = nacl.utils.random(INSTANCE_BYTES)  # ours: our own beacons come back
        self._tokens = config.burst
        self._refilled_at: float | None = None
        self._handed: dict[str, float] = {}  # address -> trio time it last went to `learn`
        self.sent = 0
        self.received = 0
        self.opened = 0  # beacons of our community (our own left out)
        self.learned = 0  # addresses handed to the peer manager
        self.dropped = 0  # read past the rate limit, or refused (stale, malformed)

    @classmethod
    def on_segment(
        cls,
        *,
        community: Community,
        listen_host: str,
        tcp_port: int,
        group: str,
        learn: Callable[[str], None],
        wall_clock_ms: Callable[[], int],
        rng: random.Random,
    ) -> LanDiscovery:
        """Discovery for a node listening on `listen_host:tcp_port`, beaconing to
        `group` (`host:port`): on the listening address's interface when that is
        a specific IPv4 address (loopback included: nodes of one machine), else
        on the kernel's choice."""
        group_host, _, group_port = group.rpartition(":")
        try:
            specific = ipaddress.ip_address(listen_host).version == 4
        except ValueError:
            specific = False
        interface = listen_host if specific and not is_wildcard_host(listen_host) else "0.0.0.0"  # noqa: S104
        config = LanConfig(group=group_host, port=int(group_port), interface=interface)
        return cls(
            community=community, tcp_port=tcp_port, learn=learn, wall_clock_ms=wall_clock_ms,
            rng=rng, config=config,
        )  # fmt: skip

    def beacon(self) -> bytes:
        """A fresh sealed beacon (a new random nonce each time: unlinkable)."""
        beacon = Beacon(port=self._tcp_port, instance=self.instance, sent_at_ms=self._clock_ms())
        return seal_beacon(beacon, community=self._community, nonce=nacl.utils.random(NONCE_BYTES))

    def receive(self, datagram: bytes, host: str) -> str | None:
        """Take one datagram from `host`; the address handed to `learn`, if any.

        Everything a hostile sender controls is bounded here: the rate, the
        size (anything but a beacon's length is dropped before decryption),
        and how often one address is passed on.
        """
        self.received += 1
        now = trio.current_time()
        if not self._take_token(now) or len(datagram) != BEACON_BYTES:
            self.dropped += 1
            return None
        try:
            beacon = open_beacon(datagram, community=self._community, now_ms=self._clock_ms())
        except DecodeError as error:
            self.dropped += 1
            log.debug("a beacon from %s refused: %s", host, error)
            return None
        if beacon is None or beacon.instance == self.instance:
            return None  # another community's (or noise), or our own come back
        self.opened += 1
        address = format_address(host, beacon.port)
        last = self._handed.get(address)
        if last is not None and now - last < self._config.relearn_s:
            return None
        if len(self._handed) >= _MAX_REMEMBERED:
            self._handed.clear()  # at worst one more dial per address
        self._handed[address] = now
        self.learned += 1
        log.debug("a member announced itself at %s", address)
        self._learn(address)
        return address

    def _take_token(self, now: float) -> bool:
        if self._refilled_at is not None:
            elapsed = now - self._refilled_at
            self._tokens = min(self._config.burst, self._tokens + elapsed * self._config.max_per_s)
        self._refilled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def _socket(self) -> trio.socket.SocketType:
        config = self._config
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):  # several nodes on one machine share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        group = socket.inet_aton(config.group)
        interface = socket.inet_aton(config.interface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group + interface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, interface)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, config.ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)  # nodes on this machine
        return sock

    async def run(self) -> None:
        """Beacon and listen until cancelled.

        Raises:
            OSError: the multicast socket cannot be made (no IPv4 interface
                with multicast, a bad group address).
        """
        with self._socket() as sock:
            await sock.bind(("", self._config.port))
            log.info(
                "LAN discovery on %s (group %s:%d)",
                self._config.interface,
                self._config.group,
                self._config.port,
            )
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._announce, sock)
                while True:
                    datagram, source = await sock.recvfrom(BEACON_BYTES + 1)
                    self.receive(datagram, source[0])

    async def _announce(self, sock: trio.socket.SocketType) -> None:
        config = self._config
        while True:
            try:
                await sock.sendto(self.beacon(), (config.group, config.port))
                self.sent += 1
            except OSError as error:  # no route for now (interface down): try again later
                log.debug("a beacon not sent: %s", error)
            spread = self._rng.uniform(1 - config.jitter, 1 + config.jitter)
            await trio.sleep(config.interval_s * spread)
