"""Hole punching's shell (node/gossip/punching.py, SPEC §15.4) on a simulated network:
two members behind NATs in session through a relay agree on a moment, "punch"
(a fake simultaneous open that connects when both dial within a second), run
the handshake with the roles fixed by identity, and move their session to the
direct link; the circuit closes, nothing is lost, and they keep converging
without the relay."""

from __future__ import annotations

import random

import trio
import trio.testing

from node.gossip.circuits import CircuitConfig, Circuits, CircuitStream
from node.gossip.punching import Opener, Punching, is_relayed
from node.net.punch import PunchFailedError
from node.net.simnet import SimNetwork
from protocol.identity import IdentityId, IdentityKey
from protocol.punch import PunchConfig
from protocol.wire import Message, PunchConnect
from simulations.convergence import COMMUNITY
from tests.node.test_circuits import _Site

PUBLIC = {"a:7400": "198.51.100.2:7400", "b:7400": "198.51.100.3:7400"}
Handover = trio.MemorySendChannel[trio.abc.Stream]


class _Switchboard:
    """NATs that let a connection through when both ends dial each other's public
    address within `window_s` (what a simultaneous open through cone NATs needs)."""

    def __init__(self, *, window_s: float = 1.0, works: bool = True) -> None:
        self.window_s = window_s
        self.works = works
        self.dials = 0
        self._waiting: dict[tuple[str, str], tuple[float, Handover]] = {}

    def opener(self, me: str) -> Opener:
        async def open_(port: int, remote: tuple[str, int], *, start_at: float) -> trio.abc.Stream:
            del port
            await trio.sleep_until(start_at)
            self.dials += 1
            there = f"{remote[0]}:{remote[1]}"
            if not self.works:
                await trio.sleep(2)  # SYNs dropped, the attempts time out
                raise PunchFailedError("dropped")
            waiting = self._waiting.pop((there, me), None)
            if waiting is not None and trio.current_time() - waiting[0] <= self.window_s:
                ours, theirs = trio.testing.memory_stream_pair()
                waiting[1].send_nowait(theirs)
                return ours
            send, receive = trio.open_memory_channel[trio.abc.Stream](1)
            self._waiting[(me, there)] = (trio.current_time(), send)
            with trio.move_on_after(self.window_s + 1):
                return await receive.receive()
            self._waiting.pop((me, there), None)
            raise PunchFailedError("no SYN came back")

        return open_


def _punching(site: _Site, board: _Switchboard) -> Punching:
    punching = Punching(
        identity_key=site.member.key, community=COMMUNITY, listen_port=7400,
        addresses=lambda: (PUBLIC[site.address],), rng=random.Random(7),
        config=PunchConfig(), opener=board.opener(PUBLIC[site.address]),
    )  # fmt: skip
    punching.attach(site.member.gossip)
    return punching


async def _relayed_pair(
    nursery: trio.Nursery, net: SimNetwork, board: _Switchboard
) -> tuple[_Site, _Site, _Site, Punching, Punching]:
    relay = _Site(net, "r:7400", 1, CircuitConfig(relay=True))
    ann = _Site(net, "a:7400", 2, CircuitConfig())
    ben = _Site(net, "b:7400", 3, CircuitConfig())
    net.put_behind_nat("a:7400", "nat-a")
    net.put_behind_nat("b:7400", "nat-b")
    punches = _punching(ann, board), _punching(ben, board)
    for home in (ann, ben):
        home.manager.add_address("r:7400")
    for site in (relay, ann, ben):
        site.start(net, nursery)
    for punching in punches:
        nursery.start_soon(punching.run)
    await trio.sleep(5)
    r_id, b_id = relay.member.key.identity, ben.member.key.identity
    nursery.start_soon(ann.circuits.connect_through, r_id, b_id)
    return relay, ann, ben, *punches


def _session_stream(site: _Site, peer: IdentityId) -> trio.abc.Stream:
    return site.member.gossip._peers[peer].stream


async def test_a_relayed_session_moves_to_the_punched_link_and_the_circuit_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net, board = SimNetwork(seed=5), _Switchboard()
    async with trio.open_nursery() as nursery:
        relay, ann, ben, ann_punch, ben_punch = await _relayed_pair(nursery, net, board)
        a_id, b_id = ann.member.key.identity, ben.member.key.identity
        started = trio.current_time()
        before = ann.member.attest(ben.member, 1)
        await ann.member.gossip.publish([before])
        await trio.sleep(10)
        # One direct session each way, not over a circuit, and the circuit gone.
        assert not is_relayed(_session_stream(ann, b_id))
        assert not is_relayed(_session_stream(ben, a_id))
        assert ann_punch.statistics().successes == ben_punch.statistics().successes == 1
        assert ann_punch.statistics().attempts == 1  # the first round connected
        assert board.dials == 2
        assert relay.circuits._routes == {}
        [(peer, took)] = ann_punch.statistics().time_to_direct_s
        assert peer == b_id
        assert 0 < took < trio.current_time() - started
        assert before.id in ben.member.ids()  # what was sent over the circuit arrived
        # Without the relay, the direct link carries what is new, both ways.
        net.take_down("r:7400")  # the direct link is memory streams: the sim cannot cut it
        await trio.sleep(1)
        assert set(ann.member.gossip.peers) == {b_id}
        after = ben.member.attest(ann.member, 2)
        await ben.member.gossip.publish([after])
        await trio.sleep(5)
        assert after.id in ann.member.ids()
        assert ann_punch.statistics().direct == 1
        # The punched session ends: its figure goes with it (kept only while it runs,
        # so a node punching new peers for months keeps no figure per peer ever met).
        await trio.aclose_forcefully(_session_stream(ann, b_id))
        await trio.sleep(1)
        assert b_id not in ann.member.gossip.peers
        assert ann_punch.statistics().direct == 0
        assert ann_punch.time_to_direct_s == {}
        nursery.cancel_scope.cancel()


async def test_a_punch_that_never_connects_gives_up_and_the_session_stays_relayed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net, board = SimNetwork(seed=6), _Switchboard(works=False)
    async with trio.open_nursery() as nursery:
        _, ann, ben, ann_punch, ben_punch = await _relayed_pair(nursery, net, board)
        b_id = ben.member.key.identity
        await trio.sleep(120)
        assert is_relayed(_session_stream(ann, b_id))  # still in session, over the circuit
        config = PunchConfig()
        assert ann_punch.statistics().attempts == config.max_rounds
        assert ben_punch.statistics().attempts == config.max_rounds
        assert ann_punch.statistics().successes == 0
        assert board.dials == 2 * config.max_rounds  # one address each, per round
        nursery.cancel_scope.cancel()


async def test_punch_messages_count_only_over_a_circuit_from_a_peer_that_named_punch() -> None:
    key = IdentityKey.from_seed(bytes([5]) * 32)
    punching = Punching(identity_key=key, community=COMMUNITY, listen_port=7400,
                        addresses=lambda: ("198.51.100.9:7400",), rng=random.Random(1))  # fmt: skip
    circuits = Circuits(identity_key=key, community=COMMUNITY, allowed=lambda _: True,
                        rng=random.Random(1))  # fmt: skip
    peer = IdentityId(bytes(32))  # smaller than any real key's: it initiates, we answer
    relayed = CircuitStream(circuits, IdentityId(bytes([9]) * 32), bytes(8))
    direct = trio.testing.memory_stream_pair()[0]
    connect = PunchConnect(nonce=bytes(8), addresses=("203.0.113.1:7400",))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    for stream, capabilities in ((direct, ("punch",)), (relayed, ("circuit",))):
        punching.greeted(peer, capabilities, stream, send)
        await punching.receive(peer, connect, stream, send)
        assert punching.punches.in_progress == 0  # a direct session, or no `punch`: ignored
    punching.greeted(peer, ("circuit", "punch"), relayed, send)
    await punching.receive(peer, connect, direct, send)  # not over the circuit: ignored
    assert punching.punches.in_progress == 0
    await punching.receive(peer, connect, relayed, send)
    assert punching.punches.in_progress == 1  # answered; waiting for the sync
    punching.ended(peer)
    assert punching.punches.in_progress == 0
