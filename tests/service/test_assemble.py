"""The one assembly (node.service.assemble): nodes from explicit parts, on any network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from node.errors import ConfigError
from node.net.simnet import SimNetwork
from node.service import Node, NodeConfig
from node.service.assemble import NOISE, Channel, NodeParts, Stores, Tuning, build_node
from node.service.networks import SimPlace
from node.store import AttestationStore, MemoryStore, Store
from protocol.identity import IdentityKey
from simulations.plain import open_plain_stream, serve_plain

PLAIN = Channel(open=open_plain_stream, serve=serve_plain)


def _clock() -> int:
    return 1_700_000_000_000 + int(trio.current_time() * 1000)


def _member(net: SimNetwork | None, name: str, store: AttestationStore, channel: Channel) -> Node:
    return build_node(
        NodeParts(
            config=NodeConfig(data_dir=Path(name), community_id=bytes(32), advertise=(name,)),
            key=IdentityKey.from_seed(name.encode().ljust(32, b".")),
            stores=Stores.in_memory(store),
            network=None if net is None else SimPlace(net, name),
            channel=channel,
            clock=_clock,
            tuning=Tuning(verify_ahead=False),
        )
    )


def _has_engine(node: Node) -> bool:
    return node._engine is not None


def _run_in_virtual_time(store: Callable[[], AttestationStore], channel: Channel) -> list[float]:
    async def main() -> list[float]:
        net = SimNetwork(seed=3)
        ann = _member(net, "ann", store(), channel)
        bob = _member(net, "bob", MemoryStore(), channel)
        assert not _has_engine(ann)  # no question yet: no engine
        async with trio.open_nursery() as nursery:
            await ann.start(nursery)
            await bob.start(nursery, bootstrap=["ann"])
            vouch = await ann.trust(bob.identity, 80)
            with trio.fail_after(30):
                await bob.wait_for(1)
            assert await bob.holds(vouch.id)
            arrived = trio.current_time()
            scores = [await ann.score(bob.identity), await bob.score(ann.identity)]
            assert _has_engine(ann)
            assert [p.identity for p in ann.peers()] == [bob.identity]
            assert (await bob.status()).stored_from_peers == 1
            nursery.cancel_scope.cancel()
        return [*scores, arrived]

    result: list[float] = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    return result


def _sqlite() -> AttestationStore:
    return Store.open(":memory:")


@pytest.mark.parametrize(
    ("store", "channel"), [(_sqlite, NOISE), (MemoryStore, NOISE), (MemoryStore, PLAIN)]
)
def test_members_built_by_the_assembly_replicate_and_answer(
    store: Callable[[], AttestationStore], channel: Channel
) -> None:
    ann_of_bob, bob_of_ann, _ = _run_in_virtual_time(store, channel)
    assert ann_of_bob > 0  # ann vouched for bob
    assert bob_of_ann == 0  # bob vouched for no one: ann is nobody to him


def test_the_same_parts_give_the_same_run() -> None:
    assert _run_in_virtual_time(MemoryStore, NOISE) == _run_in_virtual_time(MemoryStore, NOISE)


async def test_a_node_without_a_network_refuses_to_start() -> None:
    node = _member(None, "solo", MemoryStore(), NOISE)
    async with trio.open_nursery() as nursery:
        with pytest.raises(ConfigError, match="without networking"):
            await node.start(nursery)
    made = await node.trust(IdentityKey.from_seed(bytes(32)).identity, 40)  # still a store
    assert await node.holds(made.id)
