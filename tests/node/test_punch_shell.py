"""The punch shell (node/gossip/punching.py, SPEC §15.4) at its edges: what a punched
connection must prove before the gossip layer sees it, how long a silent one may
hold a round, and a peer's SYN that reaches our listener instead of our dialling
socket (two members with nothing between them: two ports on 127.0.0.1).

The first two drive one `Punching` through a round by hand, with an opener that
hands out one end of an in-memory stream; the third runs two of them over real
TCP on loopback, each with its listener wrapped in `PunchListener`."""

from __future__ import annotations

import random
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from node.gossip.circuits import Circuits, CircuitStream
from node.gossip.punching import Opener, Punching
from node.net.punch import PunchListener, open_punchable_listener, simultaneous_open
from node.net.transport import PeerStream, open_secure_stream
from node.service import NodeConfig, open_node
from protocol.handshake import Role
from protocol.identity import IdentityId, IdentityKey
from protocol.punch import PunchConfig
from protocol.wire import Message, PunchConnect, PunchSync
from simulations.convergence import COMMUNITY

OURS = ("198.51.100.9:7400",)
THEIRS = ("203.0.113.1:7400",)
NONCE = bytes(range(8))
Send = Callable[[Message], Awaitable[None]]


class _Gossip:
    """What `Punching` needs of `GossipNode`; records the sessions handed to it."""

    def __init__(self) -> None:
        self.extensions: list[object] = []
        self.capabilities: tuple[str, ...] = ("circuit",)
        self.sessions: list[tuple[IdentityId, bool]] = []
        self.handed = trio.Event()

    async def run_session(self, stream: PeerStream, *, initiator: bool, lazy: bool = False) -> bool:
        del lazy
        self.sessions.append((stream.peer, initiator))
        self.handed.set()
        await trio.aclose_forcefully(stream)  # a session that ended at once
        return True


def _relayed(key: IdentityKey) -> CircuitStream:
    """A stream that counts as a session over a circuit (never read here)."""
    circuits = Circuits(identity_key=key, community=COMMUNITY, allowed=lambda _: True,
                        rng=random.Random(1))  # fmt: skip
    return CircuitStream(circuits, IdentityId(bytes([9]) * 32), bytes(8))


async def _one_round(punching: Punching, peer: IdentityId, sent: list[Message]) -> None:
    """Play `peer`'s part of a round over the (fake) relayed session until we dial."""
    relayed = _relayed(punching._key)
    first = trio.Event()

    async def send(message: Message) -> None:
        sent.append(message)
        first.set()

    punching.greeted(peer, ("circuit", "punch"), relayed, send)
    if punching._key.identity < peer:  # we initiate: answer our punch_connect
        await first.wait()
        [connect] = sent
        assert isinstance(connect, PunchConnect)
        await punching.receive(peer, PunchConnect(nonce=connect.nonce, addresses=THEIRS),
                               relayed, send)  # fmt: skip
    else:  # they initiate: open the round, then sync
        await punching.receive(peer, PunchConnect(nonce=NONCE, addresses=THEIRS), relayed, send)
        await punching.receive(peer, PunchSync(nonce=NONCE), relayed, send)


def _far_ends(run: Callable[[trio.abc.Stream], Awaitable[None]],
              nursery: trio.Nursery) -> tuple[Opener, list[float]]:  # fmt: skip
    """An opener whose every "connection" is a memory stream with `run` on the far end;
    and the times it was called."""
    calls: list[float] = []

    async def open_(port: int, remote: tuple[str, int], *, start_at: float) -> trio.abc.Stream:
        del port, remote
        await trio.sleep_until(start_at)
        calls.append(trio.current_time())
        ours, theirs = trio.testing.memory_stream_pair()
        nursery.start_soon(run, theirs)
        return ours

    return open_, calls


@pytest.mark.parametrize("we_initiate", [True, False])
async def test_a_punched_connection_that_proves_another_member_is_closed_and_counts_as_failed(
    autojump_clock: trio.testing.MockClock, we_initiate: bool
) -> None:
    key = IdentityKey.from_seed(bytes([5]) * 32)
    # The peer we punch with; the member actually at its address is mallory.
    peer = IdentityId(bytes([255]) * 32 if we_initiate else bytes(32))
    mallory = IdentityKey.from_seed(bytes([6]) * 32)
    closed: list[bool] = []

    async def mallory_answers(stream: trio.abc.Stream) -> None:
        role = Role.RESPONDER if we_initiate else Role.INITIATOR  # the roles by identity
        secure = await open_secure_stream(stream, role=role, community=COMMUNITY,
                                          identity_key=mallory, timeout_s=10)  # fmt: skip
        assert secure.peer == key.identity  # the handshake itself succeeded
        try:
            closed.append(await secure.receive_some() == b"")
        except trio.BrokenResourceError:
            closed.append(True)

    gossip = _Gossip()
    async with trio.open_nursery() as nursery:
        opener, calls = _far_ends(mallory_answers, nursery)
        punching = Punching(identity_key=key, community=COMMUNITY, listen_port=7400,
                            addresses=lambda: OURS, rng=random.Random(1),
                            opener=opener)  # fmt: skip
        punching.attach(gossip)
        nursery.start_soon(punching.run)
        await _one_round(punching, peer, [])
        await trio.sleep(60)
        assert calls  # we dialled, the handshake ran ...
        assert closed
        assert all(closed)  # ... and every such connection was closed
        assert gossip.sessions == []  # never handed to the gossip layer
        figures = punching.statistics()
        assert figures.successes == 0
        assert figures.direct == 0
        assert figures.attempts == 1  # one round dialled; it failed
        assert not punching.punches.is_direct(peer)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("we_initiate", [True, False])
async def test_a_punched_connection_that_stalls_in_the_handshake_is_closed_at_the_timeout(
    autojump_clock: trio.testing.MockClock, we_initiate: bool
) -> None:
    key = IdentityKey.from_seed(bytes([5]) * 32)
    peer = IdentityId(bytes([255]) * 32 if we_initiate else bytes(32))
    timeout_s = 10.0
    eof_at: list[float] = []

    async def silent(stream: trio.abc.Stream) -> None:  # reads, never answers
        try:
            while await stream.receive_some():
                pass
        except trio.BrokenResourceError:
            pass
        eof_at.append(trio.current_time())

    gossip = _Gossip()
    async with trio.open_nursery() as nursery:
        opener, calls = _far_ends(silent, nursery)
        punching = Punching(identity_key=key, community=COMMUNITY, listen_port=7400,
                            addresses=lambda: OURS, rng=random.Random(1),
                            handshake_timeout_s=timeout_s, opener=opener)  # fmt: skip
        punching.attach(gossip)
        nursery.start_soon(punching.run)
        await _one_round(punching, peer, [])
        await trio.sleep(timeout_s + 1)
        [dialled_at] = calls
        [closed_at] = eof_at
        assert closed_at - dialled_at == pytest.approx(timeout_s, abs=0.1)
        assert gossip.sessions == []
        assert punching.statistics().successes == 0
        # The round failed at the timeout, not at the coordinator's 15 s dial bound: the
        # initiator's next round is already under way (or, as responder, we are idle).
        assert punching.punches.in_progress == (1 if we_initiate else 0)
        nursery.cancel_scope.cancel()


# -- the listener case, on loopback -------------------------------------------------------


def _late(delay_s: float) -> Opener:
    """`simultaneous_open`, `delay_s` after the agreed moment: the other side's SYN
    then reaches our listener first, as it does where nothing drops it."""

    async def open_(port: int, remote: tuple[str, int], *, start_at: float) -> trio.abc.Stream:
        return await simultaneous_open(port, remote, start_at=start_at + delay_s)

    return open_


def _loopback(port: int) -> Callable[[], tuple[str, ...]]:
    return lambda: (f"127.0.0.1:{port}",)


async def _accept_unclaimed(listener: PunchListener, unclaimed: list[trio.abc.Stream]) -> None:
    """The normal accept path: what `claim` did not take lands here."""
    while True:
        unclaimed.append(await listener.accept())


@pytest.mark.parametrize("late", ["initiator", "responder"])
async def test_a_syn_that_lands_on_the_listener_is_taken_by_the_punch_with_roles_by_identity(
    late: str,
) -> None:
    keys = [IdentityKey.from_seed(bytes([s]) * 32) for s in (1, 2)]
    keys.sort(key=lambda k: k.identity)  # keys[0] initiates
    listeners = [PunchListener(await open_punchable_listener("127.0.0.1", 0)) for _ in keys]
    ports = [listener.inner.socket.getsockname()[1] for listener in listeners]  # type: ignore[attr-defined]
    gossips = [_Gossip(), _Gossip()]
    unclaimed: list[trio.abc.Stream] = []
    late_index = 0 if late == "initiator" else 1
    punchings = [
        Punching(
            identity_key=key,
            community=COMMUNITY,
            listen_port=port,
            addresses=_loopback(port),
            rng=random.Random(i),
            config=PunchConfig(allow_loopback=True),
            handshake_timeout_s=5.0,
            opener=_late(0.5) if i == late_index else simultaneous_open,
        )
        for i, (key, port) in enumerate(zip(keys, ports, strict=True))
    ]
    relayed = [_relayed(key) for key in keys]

    def sender(i: int) -> Send:
        other = 1 - i

        async def send(message: Message) -> None:  # the relayed session, in memory
            await punchings[other].receive(keys[i].identity, message, relayed[other],
                                           sends[other])  # fmt: skip

        return send

    sends = [sender(0), sender(1)]
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            for i, (punching, listener) in enumerate(zip(punchings, listeners, strict=True)):
                punching.attach(gossips[i])
                listener.claim = punching.claim
                nursery.start_soon(_accept_unclaimed, listener, unclaimed)
                nursery.start_soon(punching.run)
            await trio.sleep(0.1)
            for i, punching in enumerate(punchings):
                punching.greeted(keys[1 - i].identity, ("circuit", "punch"), relayed[i], sends[i])
            for gossip in gossips:
                await gossip.handed.wait()
            nursery.cancel_scope.cancel()
    # Both ends agreed on the roles (else both would wait as responders until the
    # timeout), on the one connection there is, and the accept path never saw it.
    assert gossips[0].sessions == [(keys[1].identity, True)]
    assert gossips[1].sessions == [(keys[0].identity, False)]
    assert unclaimed == []
    assert [p.statistics().successes for p in punchings] == [1, 1]
    assert [p.statistics().attempts for p in punchings] == [1, 1]
    for listener in listeners:
        await listener.aclose()


async def test_the_daemons_listener_offers_a_punch_rounds_connection_to_the_punch_shell(
    tmp_path: Path,
) -> None:
    """The wiring (`Networking.start`): with `punch`, a connection to the node's listen
    port from an address a round expects goes to the round; any other, to the usual
    accept path."""
    config = NodeConfig(
        data_dir=tmp_path / "ann", community_id=secrets.token_bytes(32),
        community_key=secrets.token_bytes(32), listen="127.0.0.1:0", circuits=True, punch=True,
    )  # fmt: skip
    async with open_node(config) as node:
        punching = node.punching
        assert punching is not None
        punching.punches.config = PunchConfig(allow_loopback=True)
        assert node.listen_address is not None
        host, _, port = node.listen_address.rpartition(":")
        expected, other = trio.socket.socket(), trio.socket.socket()
        with expected, other:
            for sock in (expected, other):
                await sock.bind(("127.0.0.1", 0))
            peer = IdentityId(bytes(32))  # smaller than ours: it initiates, we answer
            punching.punches.open_link(peer)
            there = f"127.0.0.1:{expected.getsockname()[1]}"
            connect = PunchConnect(nonce=NONCE, addresses=(there,))
            punching.punches.receive(peer, connect, now=trio.current_time(), ours=lambda: OURS)
            assert punching.punches.expecting(there) == peer
            with trio.fail_after(5):
                await other.connect((host, int(port)))
                await expected.connect((host, int(port)))
                while peer not in punching._arrivals:  # noqa: ASYNC110 - no event to wait on
                    await trio.sleep(0.01)
            assert list(punching._arrivals) == [peer]  # the other went the usual way
