"""Peers and health: where we listen, whom we keep connected, invites, status.

`start` opens the node's network (any `node.service.networks.Network`: TCP for
the daemon, a `SimNetwork` place for simulations) and runs a `PeerManager`
over it with the node's channel; without a network the node works on its
store alone.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Sequence
from typing import Any

import trio

from node.errors import ConfigError, RequestError
from node.gossip.circuits import CircuitConfig, Circuits
from node.gossip.peers import PeerManager
from node.gossip.punching import Punching
from node.gossip.reachability import Reachability
from node.home.config import parse_address
from node.net.addresses import detect_host_addresses, is_dialable, is_local_only, own_addresses
from node.net.lan import LanDiscovery
from node.net.portmap import PortMapper
from node.net.punch import PunchListener
from node.service.core import NodeCore
from node.service.records import NodeStatus, PeerInfo
from protocol.errors import FieldError
from protocol.invite import Invite, sign_invite

__all__ = ["Networking"]

log = logging.getLogger("trustnode.node")


class Networking(NodeCore):
    """`start`, `own_addresses`, `invite`, `peers`, `connect`, `status`."""

    async def start(self, nursery: trio.Nursery, *, bootstrap: Sequence[str] = ()) -> None:
        """Listen, and keep connections to `config.bootstrap`, `bootstrap` and whoever
        peer exchange adds, in `nursery`, until it is cancelled.

        Raises:
            ConfigError: the node has no network, or cannot listen where configured.
        """
        if self._network is None:
            raise ConfigError("this node runs without networking")
        listening = await self._network.listen()
        self._transport_key = self._key
        # A ticket waiting for an inviter that rotated: presented once we hold the rotation.
        nursery.start_soon(self.invites.run, lambda: self.gossip.stored_signal)
        self._bound = listening.bound
        self.listen_address = listening.address
        advertise = self.advertised = listening.advertise or self.own_addresses()
        config = dataclasses.replace(
            self._peer_config, max_active=self.config.max_active, advertise=advertise
        )
        manager = self.peer_manager = PeerManager(
            gossip=self.gossip,
            identity_key=self._key,
            community=self.config.community,
            dial=self._network.dial,
            rng=self._rng,
            config=config,
            open_channel=self._channel[0],
            serve_channel=self._channel[1],
        )
        for address in (*self.config.bootstrap, *bootstrap):
            manager.add_address(address)
        listener = listening.listener
        if self.config.punch and listening.bound is not None:
            listener = PunchListener(listener)  # a punch's SYN may land on it (SPEC §15.4)
        nursery.start_soon(manager.run, listener)
        if listening.bound is not None:  # a TCP listener: the extensions of SPEC §15
            self._start_extensions(nursery, listening.bound, advertise)
        if isinstance(listener, PunchListener) and self.punching is not None:
            listener.claim = self.punching.claim
        if log.isEnabledFor(logging.INFO):  # a simulation starts a thousand quietly
            log.info(
                "listening on %s for community %s; peers dial %s%s",
                self.listen_address,
                self.config.community_id.hex()[:16],
                ", ".join(advertise) or "nothing (no address)",
                " (this machine only)" if is_local_only(advertise) else "",
            )

    def _start_extensions(
        self, nursery: trio.Nursery, bound: tuple[str, int], advertise: tuple[str, ...]
    ) -> None:
        """Relay circuits, dial-back checks, LAN beacons and a router's port mapping,
        each when configured."""
        bound_host, bound_port = bound
        manager, gate = self.peer_manager, self._gate
        assert manager is not None
        if self.config.circuits and gate is not None:  # SPEC §15.3: relay for our vouched
            self.circuits = Circuits(
                identity_key=self._key, community=self.config.community, rng=self._rng,
                allowed=lambda member: member in gate.last_vouched,
                config=CircuitConfig(relay=True),
                targets=lambda: sorted(gate.last_vouched),  # those we lack: via relays
            )  # fmt: skip
            self.circuits.attach(self.gossip)
            nursery.start_soon(self.circuits.run)
        if self.config.reachability_checks:  # SPEC §15.2: peers dial us back
            self.reachability = self._reachability(bound_port, advertise)
            nursery.start_soon(self.reachability.run)
        if self.config.punch and self.circuits is not None:  # SPEC §15.4: relayed -> direct
            self.punching = self._punching(bound_port)
            nursery.start_soon(self.punching.run)
        if self.config.lan_discovery:  # SPEC §15: sealed beacons on the segment
            self.lan = LanDiscovery.on_segment(
                community=self.config.community, listen_host=bound_host, tcp_port=bound_port,
                group=self.config.lan_group, learn=manager.discovered,
                wall_clock_ms=self._clock, rng=self._rng,
            )  # fmt: skip
            nursery.start_soon(self.lan.run)
        if self.config.port_mapping:  # UPnP-IGD: a candidate for the dial-back checks
            self.port_mapper = PortMapper(bound_port)
            if self.reachability is None:
                log.warning("port_mapping without reachability_checks: the mapped address is "
                            "never confirmed, so never advertised")  # fmt: skip
            nursery.start_soon(self.port_mapper.run)

    def _reachability(self, port: int, own: tuple[str, ...]) -> Reachability:
        """Dial-back checks; from the first verdict on, the peer manager shares the
        configured addresses and those peers confirmed, nothing else."""
        manager, circuits, network = self.peer_manager, self.circuits, self._network
        assert manager is not None
        assert network is not None

        def confirmed(addresses: tuple[str, ...]) -> None:
            manager.set_advertised(tuple(dict.fromkeys((*self.config.advertise, *addresses))))
            self.advertised = manager.advertised

        def candidates() -> tuple[str, ...]:  # a router's mapping is a claim to check too
            mapping = self.port_mapper.mapping if self.port_mapper is not None else None
            return own if mapping is None else (*own, mapping.external)

        checks = Reachability(
            identity_key=self._key, community=self.config.community, dial=network.dial,
            candidates=candidates, listen_port=port, rng=self._rng, confirmed_changed=confirmed,
            relays=None if circuits is None else lambda: circuits.relays_in_use,
            punched=lambda: self.punching.statistics().direct if self.punching else 0,
        )  # fmt: skip
        checks.attach(self.gossip)
        return checks

    def _punching(self, port: int) -> Punching:
        """Punches over our circuits; we tell the addresses peers see us at
        (dial-back's observed and confirmed ones) and those we advertise."""
        manager, reachability = self.peer_manager, self.reachability
        assert manager is not None

        def ours() -> tuple[str, ...]:
            found = reachability.candidates() if reachability is not None else ()
            return tuple(dict.fromkeys((*found, *manager.advertised)))

        punching = Punching(
            identity_key=self._key, community=self.config.community, listen_port=port,
            addresses=ours, rng=self._rng,
        )  # fmt: skip
        punching.attach(self.gossip)
        return punching

    def own_addresses(self, advertise: Sequence[str] = ()) -> tuple[str, ...]:
        """Where a neighbour can dial this node: `advertise` (for one invite), else
        `[network] advertise`, else the listen address (the interfaces' addresses
        when it is a wildcard), as `node.net.addresses.own_addresses` decides."""
        return own_addresses(
            listen=self.config.listen,
            bound=self._bound,
            advertise=tuple(advertise) or self.config.advertise,
            detect=detect_host_addresses,
        )

    def invite(
        self, *, expires_in_s: int | None = 7 * 86_400, single_use: bool = False,
        advertise: Sequence[str] = (),
    ) -> str:  # fmt: skip
        """A signed invite code to this community that bootstraps from this node.

        It carries every address of `own_addresses(advertise)` (at most 8), so a
        joiner on another network can try each; `node.net.addresses.invite_warnings`
        says when they all are loopback ones.

        Raises:
            ConfigError: the node has no address to invite to (listen port 0, not running).
            RequestError: `bad_value`, an address in `advertise` is not host:port.
        """
        if any(not is_dialable(a, local=True) for a in advertise):
            raise RequestError("bad_value", "advertise host:port addresses, not 0.0.0.0 or port 0")
        addresses = self.own_addresses(advertise)
        if not addresses:
            raise ConfigError("this node has no address to invite to (set [network] advertise)")
        expires = None if expires_in_s is None else self._clock() + expires_in_s * 1000
        # The joiner presents a single-use invite's nonce to the identity its handshake
        # meets: a running node's, which a rotation leaves as it was until the next start.
        key = self._transport_key or self._key
        try:
            made = Invite(
                community_id=self.config.community_id,
                community_key=self.config.community_key,
                bootstrap=addresses,
                inviter=key.identity,
                expires_at_ms=expires,
                nonce=secrets.token_bytes(16) if single_use else None,
            )
        except FieldError as exc:
            raise RequestError("bad_value", f"invite addresses: {exc}") from None
        code = sign_invite(made, key)
        self.invites.issue(made)  # on disk before the code is handed out
        return code

    def peers(self) -> list[PeerInfo]:
        """The connected peers."""
        now = trio.current_time()
        infos = []
        for identity, dialled, eager in self.gossip.describe_peers():
            synced = self.gossip.last_sync_at.get(identity)
            infos.append(
                PeerInfo(
                    identity=identity,
                    dialled=dialled,
                    eager=eager,
                    last_sync_age_s=None if synced is None else now - synced,
                )
            )
        return sorted(infos, key=lambda p: p.identity)

    def connect(self, address: str) -> None:
        """Keep a connection to `address` (host:port) from now on."""
        if self.peer_manager is None:
            raise ConfigError("this node runs without networking")
        parse_address(address, what="peer address")
        self.peer_manager.add_address(address)

    async def status(self) -> NodeStatus:
        """Counts and ages for `trustnode status`, the API and the metrics."""
        statistics = await self._reader.run(lambda s: s.statistics())
        now = trio.current_time()
        synced = max(self.gossip.last_sync_at.values(), default=None)
        manager = self.peer_manager
        return NodeStatus(
            identity=self.identity,
            community_id=self.config.community_id,
            listen=self.listen_address,
            # What the running peer manager shares; offline, what it would share.
            advertised=self.advertised if manager else self.own_addresses(),
            peers=len(self.gossip.peers),
            active_addresses=tuple(manager.active) if manager else (),
            passive_addresses=len(manager.passive) if manager else 0,
            attestations=statistics.attestations,
            heads=statistics.heads,
            store_bytes=statistics.file_bytes,
            stored_from_peers=self.gossip.stored_from_peers,
            payload_bytes_received=self.gossip.payload_bytes_received,
            protocol_errors=self.gossip.protocol_errors,
            store_errors=self.gossip.store_errors,
            relay_refused=self._gate.refused if self._gate is not None else 0,
            dial_failures=manager.dial_failures if manager else 0,
            last_sync_age_s=None if synced is None else now - synced,
            uptime_s=now - self._started,
            reachability=self.reachability.describe() if self.reachability else None,
            reachability_flaps=self.reachability.verdicts.flaps if self.reachability else 0,
            circuit_relayed_bytes=self.circuits.relayed_bytes if self.circuits else 0,
            circuits_refused=self.circuits.refused if self.circuits else 0,
            invite_refusals=self.invites.refusals.describe(now_ms=self._clock()),
            **self._punch_status(),
        )

    def _punch_status(self) -> dict[str, Any]:
        if self.punching is None:
            return {}
        figures = self.punching.statistics()
        return {
            "punch_attempts": figures.attempts,
            "punch_successes": figures.successes,
            "punched_sessions": figures.direct,
            "time_to_direct_s": figures.time_to_direct_s,
        }
