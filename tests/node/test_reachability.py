"""Reachability checks (SPEC §15.2): dial-back verdicts on a simulated network with a NAT,
no flapping, the amplification rule, old peers; and the verdict machine's properties."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from node.gossip.peers import PeerManager, PeerManagerConfig
from node.gossip.reachability import Reachability, ReachabilityConfig
from node.net.reachability import State, Verdict, Verdicts
from node.net.simnet import SimNetwork
from protocol.identity import IdentityId
from protocol.wire import DialBack, DialBackResult, Message
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import Member


class _Site:
    """A member with its peer manager and reachability checks at `address`."""

    def __init__(self, net: SimNetwork, address: str, seed: int, *, checks: bool = True) -> None:
        self.address = address
        self.member = Member(address, seed)

        async def dial(target: str) -> trio.abc.Stream:
            return await net.connect(address, target)

        self.manager = PeerManager(
            gossip=self.member.gossip, identity_key=self.member.key, community=COMMUNITY,
            dial=dial, rng=random.Random(seed),
            config=PeerManagerConfig(advertise=(address,), max_active=8),
        )  # fmt: skip
        self.reach: Reachability | None = None
        if checks:
            self.reach = Reachability(
                identity_key=self.member.key, community=COMMUNITY, dial=dial,
                candidates=lambda: (address,), listen_port=7400, rng=random.Random(seed),
                config=ReachabilityConfig(), confirmed_changed=self.manager.set_advertised,
            )  # fmt: skip
            self.reach.attach(self.member.gossip)

    async def run(self, net: SimNetwork, nursery: trio.Nursery) -> None:
        nursery.start_soon(self.manager.run, net.listen(self.address))
        if self.reach is not None:
            nursery.start_soon(self.reach.run)


def _testbed(net: SimNetwork, *, public: int = 4) -> Iterator[_Site]:
    for n in range(public):
        yield _Site(net, f"p{n}:7400", n + 1)
    net.put_behind_nat("h:7400", "nat-h")
    yield _Site(net, "h:7400", 50)


async def test_public_members_are_confirmed_and_the_home_member_is_behind_nat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=3)
    sites = list(_testbed(net))
    publics, home = sites[:-1], sites[-1]
    for site in sites:
        for other in publics:
            if other is not site:
                site.manager.add_address(other.address)
    async with trio.open_nursery() as nursery:
        for site in sites:
            await site.run(net, nursery)
        await trio.sleep(120)
        for site in publics:
            assert site.reach is not None
            assert site.reach.state is State.REACHABLE
            assert site.reach.verdicts.confirmed == (site.address,)
            assert site.reach.describe() == f"reachable at {site.address}"
            assert site.manager.advertised == (site.address,)
        assert home.reach is not None
        assert home.reach.state is State.BEHIND_NAT
        assert home.reach.describe().startswith("behind NAT")
        # What the publics observe it at became a candidate, checked and refused too.
        assert "nat-h:7400" in home.reach.candidates()
        assert home.reach.verdicts.verdict("nat-h:7400") is Verdict.UNREACHABLE
        assert home.reach.verdicts.verdict("h:7400") is Verdict.UNKNOWN  # nobody may dial it
        assert home.reach.verdicts.confirmed == ()
        # The stable network for 30 more minutes: asked again and again, never a flap.
        asked = home.reach.counters.asked
        await trio.sleep(1800)
        assert home.reach.counters.asked > asked
        for site in sites:
            assert site.reach is not None
            assert site.reach.verdicts.flaps == 0
        assert home.reach.state is State.BEHIND_NAT
        assert all(s.reach is not None and s.reach.state is State.REACHABLE for s in publics)
        nursery.cancel_scope.cancel()


async def test_peers_without_dialback_are_never_asked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=4)
    new = _Site(net, "n:7400", 1)
    olds = [_Site(net, f"o{n}:7400", n + 2, checks=False) for n in range(3)]
    for old in olds:
        new.manager.add_address(old.address)
    async with trio.open_nursery() as nursery:
        for site in (new, *olds):
            await site.run(net, nursery)
        await trio.sleep(120)
        assert new.reach is not None
        assert len(new.member.gossip.peers) == 3
        assert new.reach.counters.asked == 0  # an old peer would refuse type 14 as fatal
        assert new.reach.state is State.UNKNOWN
        assert all(o.member.gossip.protocol_errors == 0 for o in olds)
        nursery.cancel_scope.cancel()


async def test_a_request_for_a_third_party_is_not_dialled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dialled: list[str] = []

    async def dial(address: str) -> trio.abc.Stream:
        dialled.append(address)
        raise OSError("refused")

    site = Member("x", 9)
    reach = Reachability(identity_key=site.key, community=COMMUNITY, dial=dial,
                         candidates=tuple, listen_port=7400, rng=random.Random(1))  # fmt: skip
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asker = IdentityId(bytes(32))

    class _Gossip:  # the asker is connected
        extensions: list[Any] = []  # noqa: RUF012 - one instance
        capabilities: tuple[str, ...] = ()

        @property
        def peers(self) -> list[IdentityId]:
            return [asker]

    reach.attach(_Gossip())
    net = SimNetwork(seed=1)
    listener = net.listen("x:7400")
    await net.connect("198.51.100.9:50000", "x:7400")  # the asker's connection, as x sees it
    stream = await listener.accept()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reach.run)
        await trio.sleep(0.1)
        request = DialBack(nonce=bytes(8), addresses=("198.51.100.9:7400",))
        await reach.receive(asker, request, stream, send)  # no hello naming dialback: ignored
        reach.greeted(asker, ("dialback",), stream, send)
        request = DialBack(nonce=bytes(8), addresses=("192.0.2.1:7400", "198.51.100.9:7400"))
        for _ in range(4):  # the fourth in a minute: not answered
            await reach.receive(asker, request, stream, send)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert dialled == ["198.51.100.9:7400"] * 3  # the asker's own host only
    assert sent == [DialBackResult(nonce=bytes(8), reached=(), failed=("198.51.100.9:7400",),
                                   observed="198.51.100.9:50000")] * 3  # fmt: skip
    assert reach.counters.refused == 2


# -- the verdict machine ----------------------------------------------------------------

PEERS = [IdentityId(bytes([n]) * 32) for n in range(8)]


@given(st.lists(st.tuples(st.integers(0, 7), st.booleans()), max_size=60))
def test_a_verdict_changes_only_when_need_distinct_peers_agree(
    answers: list[tuple[int, bool]],
) -> None:
    verdicts = Verdicts(need=3)
    latest: dict[int, bool] = {}
    for peer, reached in answers:
        before = verdicts.verdict("a")
        latest.pop(peer, None)
        latest[peer] = reached
        changed = verdicts.record("a", PEERS[peer], reached, able=8)
        if changed:
            last3 = list(latest.values())[-3:]
            assert len(last3) == 3
            assert set(last3) == {reached}
            assert verdicts.verdict("a") is (Verdict.REACHABLE if reached else Verdict.UNREACHABLE)
        else:
            assert verdicts.verdict("a") is before


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=80))
def test_one_liar_among_honest_peers_never_flips_a_verdict(
    answers: list[tuple[int, bool]],
) -> None:
    verdicts = Verdicts(need=3)
    for peer in (1, 2, 3):
        verdicts.record("a", PEERS[peer], True, able=4)
    assert verdicts.verdict("a") is Verdict.REACHABLE
    for peer, _ in answers:
        reached = peer != 0  # peer 0 always says "not reached"; the others tell the truth
        verdicts.record("a", PEERS[peer], reached, able=4)
        assert verdicts.verdict("a") is Verdict.REACHABLE
    assert verdicts.flaps == 0


def test_with_fewer_peers_than_needed_all_must_agree() -> None:
    verdicts = Verdicts(need=3)
    assert verdicts.record("a", PEERS[0], False, able=1)  # the only peer: its word
    assert verdicts.verdict("a") is Verdict.UNREACHABLE
    assert not verdicts.record("a", PEERS[1], True, able=2)  # two disagree: no change
    assert verdicts.record("a", PEERS[0], True, able=2)  # both now say reached
    assert verdicts.verdict("a") is Verdict.REACHABLE
    assert verdicts.flaps == 1


def test_status_words() -> None:
    member = Member("s", 12)

    async def dial(address: str) -> trio.abc.Stream:
        raise OSError(address)

    reach = Reachability(identity_key=member.key, community=COMMUNITY, dial=dial,
                         candidates=tuple, listen_port=7400, rng=random.Random(1),
                         relays=lambda: 2)  # fmt: skip
    assert reach.describe().startswith("reachability unknown")
    reach.verdicts.record("nat-s:7400", PEERS[0], False, able=1)
    assert reach.describe() == "behind NAT; reached through 2 relays"
    reach.verdicts.record("203.0.113.5:7400", PEERS[0], True, able=1)
    assert reach.describe() == "reachable at 203.0.113.5:7400"
