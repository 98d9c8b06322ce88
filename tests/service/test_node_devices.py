"""Device keys end to end: real nodes pair, a device's vouch counts as its root's
at a third node, and a revocation stops the device's later vouches (SPEC §16)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from node.errors import RequestError
from node.service import open_node
from protocol.devices import pairing_code
from protocol.identity import IdentityKey
from tests.service.test_node import config, three

pytestmark = pytest.mark.slow


async def test_pair_vouch_and_revoke_across_three_nodes(tmp_path: Path) -> None:
    # ann: alice's root (laptop); ben: alice's new phone; cat: another member.
    async with three(tmp_path) as (alice, phone, cat):
        await cat.trust(alice.identity, 90)
        request, code = await phone.devices.request(alice.identity)
        assert code == pairing_code(phone.identity)
        with trio.fail_after(20):
            await alice.wait_for(2)
        report = await alice.devices.report()
        assert [p.code for p in report.pending] == [code]
        with pytest.raises(RequestError) as wrong:
            await alice.devices.approve("aaaaaaaaaa")
        assert wrong.value.code == "not_found"
        await alice.devices.approve(code)
        bob = IdentityKey.generate().identity
        await phone.trust(bob, 80)  # the phone vouches for bob: alice's vouch
        with trio.fail_after(20):
            await cat.wait_for(4)
        assert await cat.score(bob) > 0.0
        why = await cat.explain(bob)
        assert why.paths[0][0] == (cat.identity, alice.identity, bob)
        assert (await phone.devices.report()).member == alice.identity
        # Alice revokes the phone; the phone's later vouch for someone else never counts.
        await alice.devices.revoke(phone.identity)
        with trio.fail_after(20):
            await phone.wait_for(5)
        eve = IdentityKey.generate().identity
        await phone.trust(eve, 80)
        with trio.fail_after(20):
            await cat.wait_for(6)
        assert await cat.score(eve) == 0.0
        assert await cat.score(bob) > 0.0  # signed before the revocation: kept
        assert request.statement.subject == alice.identity
        seen = await cat.devices.succession(phone.identity)
        assert seen.member == alice.identity
        assert [k for k, _ in seen.chain] == [alice.identity]
        assert [(d.key, d.cutoff_ms is not None) for d in seen.devices] == [(phone.identity, True)]


async def test_a_key_cannot_pair_with_itself(tmp_path: Path) -> None:
    async with open_node(config(tmp_path, "solo"), network=False) as solo:
        with pytest.raises(RequestError):
            await solo.devices.request(solo.identity)
