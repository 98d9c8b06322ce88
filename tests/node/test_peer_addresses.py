"""The peer manager dials and shares only addresses that can reach someone else
(issue 21, defect 10): no wildcards, no loopback off one machine, none of our own,
and a dead address keeps its back-off when it moves between the views."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import trio
import trio.testing

from node.gossip.peers import PeerManager, PeerManagerConfig
from node.net.simnet import SimNetwork
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import Member

HEARSAY = (
    "0.0.0.0:7400",
    "[::]:7400",
    "127.0.0.1:7400",
    "localhost:7401",
    "[::1]:7400",
    "10.0.0.1:7400",  # our own
    "10.0.0.2:7400",
    "10.0.0.3:0",
)


async def _refuse(address: str) -> trio.abc.Stream:
    raise OSError(f"nothing at {address}")


def _manager(advertise: tuple[str, ...], **config: float) -> PeerManager:
    member = Member("x", 900, wide_seed=True)
    return PeerManager(
        gossip=member.gossip, identity_key=member.key, community=COMMUNITY, dial=_refuse,
        rng=random.Random(1),
        config=PeerManagerConfig(advertise=advertise, max_active=1, **config),  # type: ignore[arg-type]
    )  # fmt: skip


def test_hearsay_wildcards_loopback_and_our_own_addresses_are_not_kept() -> None:
    manager = _manager(("10.0.0.1:7400", "0.0.0.0:7400"))
    source = Member("peer", 901, wide_seed=True).key.identity
    manager.learn(HEARSAY, source=source)
    assert manager.passive == ["10.0.0.2:7400"]
    shared = manager.sample()
    assert shared == ("10.0.0.1:7400", "10.0.0.2:7400")  # our dialable address first


def test_a_local_node_shares_loopback_addresses() -> None:
    # Every address it has is loopback: whoever reaches it runs on this machine.
    manager = _manager(("127.0.0.1:7400",))
    source = Member("peer", 901, wide_seed=True).key.identity
    manager.learn(("127.0.0.1:7401", "0.0.0.0:7402", "127.0.0.1:7400"), source=source)
    assert manager.passive == ["127.0.0.1:7401"]
    assert manager.sample() == ("127.0.0.1:7400", "127.0.0.1:7401")


def test_bootstrap_may_be_loopback_but_never_a_wildcard_or_ourselves() -> None:
    manager = _manager(("10.0.0.1:7400",))
    for address in ("0.0.0.0:7400", "10.0.0.1:7400", "127.0.0.1:7500"):
        manager.add_address(address)
    assert manager.active == ["127.0.0.1:7500"]  # the person running us said so
    assert manager.sample() == ("10.0.0.1:7400",)  # but no one else hears of it


@pytest.mark.slow
async def test_an_address_that_reaches_ourselves_is_dropped_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=5)
    me, other = Member("me", 910, wide_seed=True), Member("other", 911, wide_seed=True)
    dials: defaultdict[str, int] = defaultdict(int)

    async def dial(address: str, source: str = "me") -> trio.abc.Stream:
        if source == "me":
            dials[address] += 1
        target = "me" if address == "me-too" else address  # a second address of ours
        return await net.connect(source, target)

    async def dial_from_other(address: str) -> trio.abc.Stream:
        return await dial(address, "other")

    manager = PeerManager(
        gossip=me.gossip, identity_key=me.key, community=COMMUNITY, dial=dial,
        rng=random.Random(2), config=PeerManagerConfig(advertise=("me",), max_active=4),
    )  # fmt: skip
    other_manager = PeerManager(
        gossip=other.gossip, identity_key=other.key, community=COMMUNITY, dial=dial_from_other,
        rng=random.Random(3), config=PeerManagerConfig(advertise=("other",)),
    )  # fmt: skip
    manager.add_address("other")
    manager.learn(("me-too",), source=other.key.identity)  # hearsay: a peer told us
    async with trio.open_nursery() as nursery:
        nursery.start_soon(manager.run, net.listen("me"))
        nursery.start_soon(other_manager.run, net.listen("other"))
        await trio.sleep(300)
        assert dials["me-too"] == 1
        assert "me-too" not in manager.active + manager.passive
        assert "me-too" not in manager.sample()
        manager.learn(("me-too",), source=other.key.identity)  # told again: ignored
        assert "me-too" not in manager.passive
        assert manager.active == ["other"]
        nursery.cancel_scope.cancel()


async def test_back_off_survives_demotion_and_promotion(
    autojump_clock: trio.testing.MockClock,
) -> None:
    member = Member("x", 920, wide_seed=True)
    times: defaultdict[str, list[float]] = defaultdict(list)

    async def dial(address: str) -> trio.abc.Stream:
        times[address].append(trio.current_time())
        raise OSError(address)

    config = PeerManagerConfig(
        max_active=1, backoff_initial_s=1.0, backoff_max_s=1000.0, jitter=0.0,
        replace_after=3, explore_interval_s=1e9,
    )  # fmt: skip
    manager = PeerManager(
        gossip=member.gossip, identity_key=member.key, community=COMMUNITY, dial=dial,
        rng=random.Random(4), config=config,
    )  # fmt: skip
    manager.add_address("dead-1")
    manager.add_address("dead-2")  # the active view is full: it waits in the passive one
    async with trio.open_nursery() as nursery:
        nursery.start_soon(manager.run)
        await trio.sleep(1000)
        nursery.cancel_scope.cancel()
    for address in ("dead-1", "dead-2"):
        gaps = [b - a for a, b in zip(times[address], times[address][1:], strict=False)]
        assert len(times[address]) >= 4, (address, times[address])  # each promoted back
        assert gaps == sorted(gaps), (address, gaps)  # redials only ever slow down
    # 1 + 2 + 4 + ... seconds: a handful of dials in 1000 s, not one every few seconds.
    assert sum(len(t) for t in times.values()) <= 20
