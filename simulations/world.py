"""A simulated community: many full-stack nodes on one `SimNetwork`, in virtual time.

Each `Member` is a `Node`, built by the daemon's own assembly
(`node.service.assemble.build_node`): `GossipNode` (reconciliation, push tree,
relay quotas) behind a `PeerManager` (active/passive views, peer exchange,
back-off) over the Noise channel, with an in-memory store and a trust engine
built on the first question. Only the parts differ from `open_node`: the
network is a place on `SimNetwork`, the clock is trio's (run under
`MockClock(autojump_threshold=0)`), store calls and trust answers run inline,
and all members share one cache of verified envelopes (identical bytes verify
identically, so each signature is checked once per process; see
`node.store.ingest`). The daemon never shares such a cache.

`World` adds what scenarios need: publishing, crashes and restarts, fresh
joins, partitions, and the arrival time of every attestation at every member
(recorded through the node's stored-batch hook, so measuring costs nothing in
virtual time).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import trio

from node.net.simnet import LinkModel, SimNetwork
from node.service import Node, NodeConfig
from node.service.assemble import (
    NOISE,
    Channel,
    NodeParts,
    PeerManagerConfig,
    RelayPolicy,
    Stores,
    Tuning,
    build_node,
)
from node.service.networks import SimPlace
from node.store import AttestationStore, MemoryStore, Store
from protocol.attestation import Attestation, AttestationBody, AttestationId, sign_attestation
from protocol.channel import Community
from protocol.identity import IdentityId, IdentityKey
from protocol.statement import Statement
from simulations.params import LIMITS, check_parameters
from simulations.plain import open_plain_stream, serve_plain

__all__ = ["T0", "Member", "NetworkParameters", "World"]

T0 = 1_700_000_000_000
COMMUNITY = Community(id=bytes(32), keys=(bytes([7]) * 32,))


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkParameters:
    """The network model and the peer settings every member uses."""

    latency_min_ms: float = 20.0
    latency_max_ms: float = 120.0
    latency_shape: str = "uniform"  # or "lognormal"
    loss: float = 0.0
    bandwidth_kbps: float = 0.0  # per connection and direction; 0 = unlimited
    max_active: int = 6
    bootstrap: int = 4
    resync_s: float = 30.0
    explore_s: float = 600.0  # each member swaps an active link about this often (node/peers)
    relay_quota: int | None = None  # None: no relay policy (store everything valid)
    join_gap_s: float = 0.05  # members join one after another, as people do
    store: str = "sqlite"  # or "memory": with channel=plain, the lighter mode
    channel: str = "noise"  # or "plain": no Noise (simulations.plain)
    # "source": members exchange routes and push along each issuer's shortest-path
    # tree (SPEC §9.4), as the daemon does; "shared": they do not, and use the one
    # push tree of §9.3. Routes cost every member an entry per member per link:
    # an estimated 10 MB each among 10 000 members (a 10 000-member run passed 4.8 GB
    # while still forming), too much for one machine.
    trees: str = "source"

    def __post_init__(self) -> None:
        # Built in code too (tests, benchmarks), not only from checked CLI text.
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.pop("relay_quota")
        check_parameters(values, values)
        if self.relay_quota is not None:
            LIMITS["quota"].check("relay_quota", self.relay_quota)

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> NetworkParameters:
        """The fields of this class found in a scenario's parameters."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in params.items() if k in names})  # type: ignore[arg-type]

    def link_model(self) -> LinkModel:
        """The `SimNetwork` link model."""
        return LinkModel(
            min_latency_s=self.latency_min_ms / 1000,
            max_latency_s=self.latency_max_ms / 1000,
            latency_shape=self.latency_shape,
            loss=self.loss,
            bandwidth_bytes_per_s=self.bandwidth_kbps * 125 if self.bandwidth_kbps else None,
        )


class Member:
    """One simulated member: its `Node` (key, store, gossip, peers, trust), up or down."""

    def __init__(self, world: World, index: int) -> None:
        self.index = index
        self.name = f"n{index}"
        self.key = IdentityKey.from_seed((world.seed * 1_000_003 + index).to_bytes(32, "big"))
        parameters = world.parameters
        self.store: AttestationStore = (
            MemoryStore() if parameters.store == "memory" else Store.open(":memory:")
        )
        self.node: Node = build_node(
            NodeParts(
                config=_config(self.name, parameters),
                key=self.key,
                stores=Stores.in_memory(self.store),
                network=SimPlace(world.net, self.name),
                channel=PLAIN if parameters.channel == "plain" else NOISE,
                clock=world.clock_ms,
                rng=random.Random(world.seed * 7919 + index),
                tuning=Tuning(
                    relay=None
                    if parameters.relay_quota is None
                    else RelayPolicy(unvouched_quota=parameters.relay_quota, refresh_ms=5_000),
                    peers=PeerManagerConfig(
                        backoff_initial_s=1.0, backoff_max_s=20.0,
                        explore_interval_s=parameters.explore_s,
                    ),
                    verify_ahead=False,
                    verified_cache=world.verified_cache,
                    source_trees=parameters.trees == "source",
                    on_stored=lambda ids: world.record(self.index, ids),
                ),
            )
        )  # fmt: skip
        self.gossip = self.node.gossip
        self.up = True
        self.started = False
        self._world = world

    @property
    def identity(self) -> IdentityId:
        """The member's identity."""
        return self.key.identity

    def sign(self, statement: Statement) -> Attestation:
        """An attestation by this member, dated now (virtual time)."""
        body = AttestationBody(
            issuer=self.key.identity, issued_at_ms=self._world.clock_ms(), statement=statement
        )
        return sign_attestation(body, self.key)

    async def start(self, nursery: trio.Nursery, addresses: Sequence[str]) -> None:
        """Listen and keep connections to `addresses` (and whoever peer exchange adds)."""
        await self.node.start(nursery, bootstrap=addresses)
        self.started = True


PLAIN = Channel(open=open_plain_stream, serve=serve_plain)
"""The simulations' lighter channel: no Noise (`simulations.plain`)."""


def _config(name: str, parameters: NetworkParameters) -> NodeConfig:
    """A member's configuration: its name is its address on the simulated network."""
    return NodeConfig(
        data_dir=Path(name),  # never opened: the store is in memory
        community_id=COMMUNITY.id,
        community_key=COMMUNITY.keys[0],
        listen=name,
        advertise=(name,),
        max_active=parameters.max_active,
        resync_interval_s=parameters.resync_s,
    )


class World:
    """Members on one simulated network (build it inside `trio.run` with a MockClock)."""

    def __init__(self, *, seed: int, parameters: NetworkParameters) -> None:
        self.seed = seed
        self.parameters = parameters
        self.rng = random.Random(seed)  # simulation, not secrets
        self.net = SimNetwork(seed=seed, model=parameters.link_model())
        self.verified_cache: dict[bytes, Attestation] = {}
        self.members: list[Member] = []
        self.arrivals: dict[AttestationId, dict[int, float]] = {}
        self.published: dict[AttestationId, float] = {}
        self.payload_bytes: dict[AttestationId, int] = {}

    def clock_ms(self) -> int:
        """The members' wall clock: virtual seconds since the start, from T0."""
        return T0 + int(trio.current_time() * 1000)

    def record(self, member: int, ids: Iterable[AttestationId]) -> None:
        """The gossip hook: `member` stored `ids` now."""
        now = trio.current_time()
        for attestation_id in ids:
            self.arrivals.setdefault(attestation_id, {}).setdefault(member, now)

    def add_members(self, count: int) -> list[Member]:
        """Create `count` members (not started)."""
        made = [Member(self, len(self.members) + i) for i in range(count)]
        self.members += made
        return made

    async def start(self, nursery: trio.Nursery, members: Sequence[Member] | None = None) -> None:
        """Start members, each bootstrapping from random members started before it."""
        for member in members if members is not None else self.members:
            others = [m.name for m in self.members if m is not member and m.up and m.started]
            count = min(self.parameters.bootstrap, len(others))
            await member.start(nursery, self.rng.sample(others, count))
            await trio.sleep(self.parameters.join_gap_s)

    def stop(self, nursery: trio.Nursery) -> None:
        """End the run: every member goes down at once (see `GossipNode.close`)."""
        for member in self.members:
            member.gossip.close()
        nursery.cancel_scope.cancel()

    @property
    def live(self) -> list[Member]:
        """Members that are up."""
        return [m for m in self.members if m.up]

    async def publish(self, member: Member, statement: Statement) -> Attestation:
        """`member` signs and publishes `statement` now."""
        attestation = member.sign(statement)
        self.note_published(attestation)
        await member.gossip.publish([attestation])
        return attestation

    def note_published(self, attestation: Attestation) -> None:
        """`attestation` was published now (by a member's `Node`, or `publish`)."""
        self.published[attestation.id] = trio.current_time()
        self.payload_bytes[attestation.id] = len(attestation.data)

    def crash(self, member: Member) -> None:
        """`member` goes down: unreachable, its connections break (its store survives)."""
        member.up = False
        self.net.take_down(member.name)

    def restart(self, member: Member) -> None:
        """`member` comes back with its store; its peer manager redials."""
        member.up = True
        self.net.bring_up(member.name)

    def holders(self, attestation_id: AttestationId) -> dict[int, float]:
        """Members that stored `attestation_id`, with when."""
        return self.arrivals.get(attestation_id, {})

    def complete(self, ids: Iterable[AttestationId], members: Iterable[Member]) -> bool:
        """Whether every one of `members` stored every one of `ids`."""
        indices = [m.index for m in members]
        return all(all(i in self.holders(a) for i in indices) for a in ids)

    async def wait_complete(
        self, ids: Sequence[AttestationId], *, members: Sequence[Member] | None = None,
        timeout_s: float, step_s: float = 0.5,
    ) -> float | None:  # fmt: skip
        """Wait until `members` (default: the live ones) hold `ids`; the wait, or None."""
        started = trio.current_time()
        while trio.current_time() - started <= timeout_s:
            if self.complete(ids, members if members is not None else self.live):
                return trio.current_time() - started
            await trio.sleep(step_s)
        return None

    def spread_curve(
        self, ids: Sequence[AttestationId], members: Sequence[Member], *, since: float,
        points: int = 60,
    ) -> list[tuple[float, float]]:  # fmt: skip
        """Fraction of (member, attestation) pairs delivered, against time since `since`."""
        indices = {m.index for m in members}
        times = sorted(
            max(0.0, t - since) for a in ids for i, t in self.holders(a).items() if i in indices
        )
        total = len(ids) * len(indices)
        if not times or not total:
            return []
        end = times[-1]
        curve = []
        cursor = 0
        for k in range(points + 1):
            x = end * k / points
            while cursor < len(times) and times[cursor] <= x:
                cursor += 1
            curve.append((x, cursor / total))
        return curve
