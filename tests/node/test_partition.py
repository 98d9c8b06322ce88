"""Partition and heal on the simulated network: both sides write, nothing is lost,
no tombstone is undone (issue #5, seeded virtual time)."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from node.gossip.peers import PeerManager, PeerManagerConfig
from node.net.simnet import SimNetwork
from protocol.attestation import AttestationBody, sign_attestation
from protocol.statement import Kind, Revoke, Trust
from simulations.convergence import COMMUNITY
from tests.node.test_gossip import T0, Member

pytestmark = pytest.mark.slow
NODES = 24


async def test_partition_heal_converges_and_keeps_the_tombstone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    rng = random.Random(24)
    net = SimNetwork(seed=24)
    members = [Member(f"n{i}", i + 1, wide_seed=True) for i in range(NODES)]
    config = PeerManagerConfig(max_active=6, backoff_initial_s=1.0, backoff_max_s=20.0)
    managers = []
    for index, member in enumerate(members):

        async def dial(address: str, source: str = member.name) -> trio.abc.Stream:
            return await net.connect(source, address)

        manager = PeerManager(
            gossip=member.gossip, identity_key=member.key, community=COMMUNITY, dial=dial,
            rng=random.Random(index), config=config,
        )  # fmt: skip
        for other in rng.sample([m for m in members if m is not member], 3):
            manager.add_address(other.name)
        managers.append(manager)
    left, right = members[: NODES // 2], members[NODES // 2 :]
    alice, bob = left[0], right[0]
    vouch = Trust(subject=bob.key.identity, context="carpool", value=80)
    first = sign_attestation(
        AttestationBody(issuer=alice.key.identity, issued_at_ms=T0 - 5000, statement=vouch),
        alice.key,
    )
    async with trio.open_nursery() as nursery:
        for member, manager in zip(members, managers, strict=True):
            nursery.start_soon(manager.run, net.listen(member.name))
        await alice.gossip.publish([first])
        await trio.sleep(30)
        assert all(m.store.contains(first.id) for m in members)

        net.partition([{m.name for m in left}, {m.name for m in right}])
        revoke = sign_attestation(
            AttestationBody(
                issuer=alice.key.identity,
                issued_at_ms=T0 - 1000,
                statement=Revoke(target_kind=Kind.TRUST, subject=bob.key.identity, scope="carpool"),
            ),
            alice.key,
        )
        stale = sign_attestation(  # a replay of an older vouch, on the other side
            AttestationBody(
                issuer=alice.key.identity, issued_at_ms=T0 - 3000,
                statement=Trust(subject=bob.key.identity, context="carpool", value=90),
            ),
            alice.key,
        )  # fmt: skip
        written_left = [revoke, *(rng.choice(left).attest(bob, n) for n in range(20))]
        written_right = [stale, *(rng.choice(right).attest(alice, 100 + n) for n in range(20))]
        await alice.gossip.publish(written_left[:1])
        for attestation in written_left[1:]:
            author = next(m for m in left if m.key.identity == attestation.issuer)
            await author.gossip.publish([attestation])
        await bob.gossip.publish(written_right[:1])
        for attestation in written_right[1:]:
            author = next(m for m in right if m.key.identity == attestation.issuer)
            await author.gossip.publish([attestation])
        await trio.sleep(30)
        assert not any(m.store.contains(revoke.id) for m in right)  # nothing crossed the cut
        assert not any(m.store.contains(stale.id) for m in left)
        stale_head = bob.store.slot_head(first.slot.id)
        assert stale_head is not None
        assert stale_head.id == stale.id  # the right side believes the old vouch again

        net.heal()
        healed = trio.current_time()
        everything = {first.id, *(a.id for a in written_left), *(a.id for a in written_right)}
        while trio.current_time() - healed < 180:
            await trio.sleep(5)
            if all(everything <= m.ids() for m in members):
                break
        assert all(everything <= m.ids() for m in members), "something was lost"
        converged_s = trio.current_time() - healed
        assert converged_s <= 120, converged_s  # redial back-off + one anti-entropy period
        now_ms = T0 + int(trio.current_time() * 1000)
        for member in members:
            head = member.store.slot_head(first.slot.id)
            assert head is not None
            assert head.id == revoke.id  # the tombstone wins everywhere
            assert member.store.current_in_slot(first.slot.id, now_ms=now_ms) is None
        nursery.cancel_scope.cancel()
