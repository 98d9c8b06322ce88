"""Relayed circuits (node/gossip/circuits.py, SPEC §15.3): two members behind NATs talk
end to end through a third (simulated network, Noise inside the circuit); the relay's
quotas hold against a member using it as a free pipe."""

from __future__ import annotations

import random

import trio
import trio.testing

from node.gossip.circuits import CircuitConfig, Circuits
from node.gossip.peers import PeerManager, PeerManagerConfig
from node.net.simnet import SimNetwork
from protocol.identity import IdentityId
from protocol.wire import CircuitClose, CircuitData, CircuitOpen, Message
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import Member


class _Site:
    def __init__(self, net: SimNetwork, address: str, seed: int, config: CircuitConfig,
                 targets: list[IdentityId] | None = None) -> None:  # fmt: skip
        self.address = address
        self.member = Member(address, seed)

        async def dial(target: str) -> trio.abc.Stream:
            return await net.connect(address, target)

        self.manager = PeerManager(
            gossip=self.member.gossip, identity_key=self.member.key, community=COMMUNITY,
            dial=dial, rng=random.Random(seed), config=PeerManagerConfig(advertise=(address,)),
        )  # fmt: skip
        self.circuits = Circuits(
            identity_key=self.member.key, community=COMMUNITY, allowed=lambda _: True,
            rng=random.Random(seed), config=config,
            targets=None if targets is None else (lambda: targets),
        )  # fmt: skip
        self.circuits.attach(self.member.gossip)

    def start(self, net: SimNetwork, nursery: trio.Nursery) -> None:
        nursery.start_soon(self.manager.run, net.listen(self.address))
        nursery.start_soon(self.circuits.run)


async def test_two_members_behind_nats_run_a_session_through_a_relay_that_sees_ciphertext(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=5)
    relay = _Site(net, "r:7400", 1, CircuitConfig(relay=True))
    ann = _Site(net, "a:7400", 2, CircuitConfig())
    ben = _Site(net, "b:7400", 3, CircuitConfig())
    net.put_behind_nat("a:7400", "nat-a")
    net.put_behind_nat("b:7400", "nat-b")
    forwarded: list[bytes] = []
    relay.circuits.relay_tap = forwarded.append
    for home in (ann, ben):
        home.manager.add_address("r:7400")
    async with trio.open_nursery() as nursery:
        for site in (relay, ann, ben):
            site.start(net, nursery)
        await trio.sleep(5)
        a_id, b_id, r_id = (s.member.key.identity for s in (ann, ben, relay))
        assert set(ann.member.gossip.peers) == {r_id}  # ann cannot dial ben: NATs both
        ran = trio.Event()

        async def circuit() -> None:
            await ann.circuits.connect_through(r_id, b_id)
            ran.set()

        nursery.start_soon(circuit)
        await trio.sleep(5)
        assert b_id in ann.member.gossip.peers  # a session with ben, end to end
        assert a_id in ben.member.gossip.peers
        attestation = ann.member.attest(ben.member, 1)
        await ann.member.gossip.publish([attestation])
        await trio.sleep(5)
        assert attestation.id in ben.member.ids()
        assert relay.circuits.relayed_bytes > 0
        relayed = b"".join(forwarded)
        # The relay forwarded the ends' Noise records: no plaintext envelope in them.
        assert attestation.envelope.data not in relayed
        assert bytes(b_id) not in relayed[64:]  # identities travel encrypted, inside the handshake
        nursery.cancel_scope.cancel()


async def test_quotas_hold_against_a_member_using_the_relay_as_a_free_pipe(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = CircuitConfig(relay=True, max_circuits=2, max_bytes=50_000)
    relay = Member("r", 1)
    circuits = Circuits(identity_key=relay.key, community=COMMUNITY, allowed=lambda i: i != eve,
                        rng=random.Random(1), config=config)  # fmt: skip
    abuser, friend, eve = (IdentityId(bytes([n]) * 32) for n in (7, 8, 9))
    sent: dict[IdentityId, list[Message]] = {abuser: [], friend: [], eve: []}
    for member in sent:

        async def send(message: Message, to: IdentityId = member) -> None:
            sent[to].append(message)

        circuits.greeted(member, ("circuit",), trio.testing.memory_stream_pair()[0], send)
    stream = trio.testing.memory_stream_pair()[0]

    async def deliver(frm: IdentityId, message: Message) -> None:
        await circuits.receive(frm, message, stream, sent[frm].append)  # type: ignore[arg-type]

    await deliver(abuser, CircuitOpen(circuit=bytes(8), peer=friend))
    (opened,) = sent[friend]
    assert isinstance(opened, CircuitOpen)
    assert opened.peer == friend  # "someone connects to you"
    for n in range(100):  # 100 KB through a 50 KB quota
        await deliver(abuser, CircuitData(circuit=bytes(8), data=bytes([n % 256]) * 1000))
    forwarded = sum(len(m.data) for m in sent[friend] if isinstance(m, CircuitData))
    assert forwarded == 50_000
    assert CircuitClose(circuit=bytes(8), code="quota") in sent[abuser]
    assert CircuitClose(circuit=opened.circuit, code="quota") in sent[friend]
    # More circuits than the connection quota: refused. An untrusted member: refused.
    await deliver(abuser, CircuitOpen(circuit=bytes([1]) * 8, peer=friend))
    await deliver(abuser, CircuitOpen(circuit=bytes([2]) * 8, peer=friend))
    await deliver(abuser, CircuitOpen(circuit=bytes([3]) * 8, peer=friend))
    assert CircuitClose(circuit=bytes([3]) * 8, code="quota") in sent[abuser]
    await deliver(eve, CircuitOpen(circuit=bytes(8), peer=friend))
    assert sent[eve] == [CircuitClose(circuit=bytes(8), code="refused")]
    # Data of a closed circuit goes nowhere.
    before = len(sent[friend])
    await deliver(abuser, CircuitData(circuit=bytes(8), data=b"x"))
    assert len(sent[friend]) == before
    assert circuits.relayed_bytes == 50_000


async def test_a_member_behind_nat_reaches_the_members_it_wants_through_its_relays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=6)
    wanted: list[IdentityId] = []
    quiet = _Site(net, "q:7400", 4, CircuitConfig(relay=True))  # relays, not connected to ben
    relay = _Site(net, "r:7400", 1, CircuitConfig(relay=True))
    ann = _Site(net, "a:7400", 2, CircuitConfig(reach_interval_s=10.0), targets=wanted)
    ben = _Site(net, "b:7400", 3, CircuitConfig())
    wanted.append(ben.member.key.identity)
    net.put_behind_nat("a:7400", "nat-a")
    net.put_behind_nat("b:7400", "nat-b")
    ann.manager.add_address("q:7400")
    for home in (ann, ben):
        home.manager.add_address("r:7400")
    async with trio.open_nursery() as nursery:
        for site in (quiet, relay, ann, ben):
            site.start(net, nursery)
        await trio.sleep(30)
        assert ben.member.key.identity in ann.member.gossip.peers  # no address, no dial: a circuit
        assert relay.circuits.relayed_bytes > 0
        assert quiet.circuits.relayed_bytes == 0  # it answered no_route
        nursery.cancel_scope.cancel()
