"""What a session does with refused items and broken rules (SPEC §9.2, §11), on
virtual time: the table of node/policy applied, an `error` then a close record."""

from __future__ import annotations

import trio
import trio.testing

from node.simnet import SimNetwork
from protocol.attestation import attestation_id
from protocol.wire import Push
from simulations.convergence import link
from tests.node.test_gossip import Member


def _newer_version(envelope: bytes) -> bytes:
    # 0x92, fixarray(8), then the version as a fixint: 1 becomes 2.
    assert envelope[2] == 0x01
    return envelope[:2] + b"\x02" + envelope[3:]


async def test_an_envelope_of_a_newer_version_is_dropped_not_the_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    net = SimNetwork(seed=21)
    a, b = Member("a", 1), Member("b", 2)
    async with trio.open_nursery() as nursery:
        await link(net, nursery, a, b)
        await trio.sleep(5)
        newer, valid = _newer_version(b.attest(a, 1).data), b.attest(a, 2).data
        await b.gossip._peers[a.key.identity].send(Push(envelopes=(newer, valid)))
        await trio.sleep(5)
        # Benign, like from_future: the item is dropped, the rest kept, the link stays.
        assert a.gossip.peers == [b.key.identity]
        assert a.gossip.protocol_errors == 0
        assert a.store.contains(attestation_id(valid))
        assert not a.store.contains(attestation_id(newer))
        nursery.cancel_scope.cancel()
