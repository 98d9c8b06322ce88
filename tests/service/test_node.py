"""The embedding API: real nodes (keys, SQLite stores, Noise over loopback TCP) in one program."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from node.errors import ConfigError, RequestError
from node.gossip.gossip_node import ThreadedStore
from node.service import Node, NodeConfig, open_node
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.invite import decode_invite
from protocol.statement import Kind, Trust
from protocol.supersession import order_key

pytestmark = pytest.mark.slow
COMMUNITY = secrets.token_bytes(32)
KEY = secrets.token_bytes(32)


def config(folder: Path, name: str, *bootstrap: str) -> NodeConfig:
    return NodeConfig(
        data_dir=folder / name, community_id=COMMUNITY, community_key=KEY,
        listen="127.0.0.1:0", bootstrap=bootstrap, resync_interval_s=2.0,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def three(folder: Path) -> AsyncIterator[tuple[Node, Node, Node]]:
    async with open_node(config(folder, "ann")) as ann:
        address = ann.listen_address
        assert address is not None
        async with (
            open_node(config(folder, "ben", address)) as ben,
            open_node(config(folder, "cat", address)) as cat,
        ):
            yield ann, ben, cat


async def test_three_nodes_converge_and_answer_from_their_own_viewpoints(tmp_path: Path) -> None:
    async with three(tmp_path) as (ann, ben, cat):
        await ann.trust(ben.identity, 80)
        await ben.trust(cat.identity, 60)
        await cat.distrust(ann.identity, 50, context="carpool")
        with trio.fail_after(20):
            for node in (ann, ben, cat):
                await node.wait_for(3)
        assert await ann.score(cat.identity) > 0  # through ben
        assert await cat.score(ben.identity) == 0  # nobody cat trusts vouches for ben
        why = await ann.explain(cat.identity)
        assert why.paths[0][0] == (ann.identity, ben.identity, cat.identity)
        assert sum(share for _, share in why.first_hops) == pytest.approx(why.score)
        status = await ben.status()
        assert status.attestations == 3
        assert status.peers >= 1
        assert {p.identity for p in ann.peers()} == {ben.identity, cat.identity}


async def test_updates_within_one_millisecond_still_supersede_in_order(tmp_path: Path) -> None:
    frozen = 1_800_000_000_000
    async with open_node(
        config(tmp_path, "ann"), network=False, wall_clock_ms=lambda: frozen
    ) as ann:
        bob = IdentityKey.generate().identity
        first = await ann.trust(bob, 80)
        second = await ann.trust(bob, 20)
        assert order_key(second) > order_key(first)
        current = await ann.attestations(issuer=ann.identity)
        assert [a.id for a in current] == [second.id]
        await ann.revoke(Kind.TRUST, bob, "general")
        assert await ann.attestations(issuer=ann.identity) == []
        assert await ann.score(bob) == 0


async def test_changes_follow_local_and_remote_arrivals(tmp_path: Path) -> None:
    async with three(tmp_path) as (ann, ben, _):
        seen: list[bytes] = []
        both = trio.Event()

        async def follow() -> None:
            async with contextlib.aclosing(ann.changes()) as changes:
                async for change in changes:
                    seen.append(change.attestation.id)
                    if len(seen) == 2:
                        both.set()
                        return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            mine = await ann.trust(ben.identity, 70)
            theirs = await ben.trust(ann.identity, 70)
            with trio.fail_after(20):
                await both.wait()
        assert seen == [mine.id, theirs.id]


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    bob = IdentityKey.generate().identity
    async with open_node(config(tmp_path, "ann"), network=False) as ann:
        identity = ann.identity
        await ann.trust(bob, 90, context="lending")
        before = await ann.score(bob, "lending")
    async with open_node(config(tmp_path, "ann"), network=False) as again:
        assert again.identity == identity
        assert await again.score(bob, "lending") == before > 0


async def test_export_then_import_elsewhere_verifies_every_envelope(tmp_path: Path) -> None:
    stranger = IdentityKey.generate()
    forged = sign_attestation(
        AttestationBody(
            issuer=stranger.identity, issued_at_ms=1_800_000_000_000,
            statement=Trust(subject=IdentityKey.generate().identity, value=10),
        ),
        stranger,
    ).data  # fmt: skip
    tampered = bytearray(forged)
    tampered[-70] ^= 1
    async with open_node(config(tmp_path, "ann"), network=False) as ann:
        await ann.trust(stranger.identity, 40)
        await ann.certify(stranger.identity, "member:co-op")
        exported = await ann.export()
    async with open_node(config(tmp_path, "ben"), network=False) as ben:
        report = await ben.import_envelopes([*exported, bytes(tampered), exported[0]])
        outcomes = [item.outcome.value for item in report.items]
        assert outcomes == ["new", "new", "rejected", "duplicate"]
        assert sorted(await ben.export()) == sorted(exported)


async def test_invite_bootstraps_from_the_bound_address(tmp_path: Path) -> None:
    async with open_node(config(tmp_path, "ann")) as ann:
        invite = decode_invite(ann.invite(single_use=True))
        assert invite.bootstrap == (ann.listen_address,)
        assert (invite.inviter, invite.community_id, invite.community_key) == (
            ann.identity, COMMUNITY, KEY,
        )  # fmt: skip
        assert invite.nonce is not None


async def test_refusals_are_typed(tmp_path: Path) -> None:
    async with open_node(config(tmp_path, "ann"), network=False) as ann:
        bob = IdentityKey.generate().identity
        for value in (0, 101, -5):
            with pytest.raises(RequestError, match=r"1\.\.100"):
                await ann.trust(bob, value)
        with pytest.raises(RequestError, match="exactly one"):
            await ann.attestations()
        with pytest.raises(ConfigError, match="without networking"):
            ann.connect("127.0.0.1:1")


async def test_a_busy_port_is_a_config_error(tmp_path: Path) -> None:
    async with open_node(config(tmp_path, "ann")) as ann:
        taken = ann.listen_address
        assert taken is not None
        busy = NodeConfig(data_dir=tmp_path / "ben", community_id=COMMUNITY, listen=taken)
        with pytest.raises(ConfigError, match="cannot listen"):
            async with open_node(busy):
                pass


async def test_a_hostile_peer_address_is_a_failed_dial_not_a_crash(tmp_path: Path) -> None:
    # Found by schemathesis against the API: an address IDNA refuses crashed the daemon.
    async with open_node(config(tmp_path, "ann")) as ann:
        ann.connect("z\N{EMOJI MODIFIER FITZPATRICK TYPE-1-2}z:123")
        ann.connect("[::1]:1")
        manager = ann.peer_manager
        assert manager is not None
        with trio.fail_after(10):
            while manager.dial_failures < 2:  # noqa: ASYNC110  # a counter, no event to wait on
                await trio.sleep(0.05)
        assert (await ann.status()).peers == 0  # and the node still answers


async def test_clock_jumps_do_not_break_supersession_or_answers(tmp_path: Path) -> None:
    clock = [1_800_000_000_000]
    async with open_node(
        config(tmp_path, "ann"), network=False, wall_clock_ms=lambda: clock[0]
    ) as ann:
        bob = IdentityKey.generate().identity
        first = await ann.trust(bob, 90)
        clock[0] -= 3_600_000  # the clock jumps an hour back
        second = await ann.trust(bob, 10)
        assert second.issued_at_ms > first.issued_at_ms  # still after the head: it wins
        assert [a.id for a in await ann.attestations(issuer=ann.identity)] == [second.id]
        low = await ann.score(bob)
        clock[0] += 7_200_000  # and two hours forward
        assert await ann.score(bob) == low
        third = await ann.trust(bob, 50)
        assert [a.id for a in await ann.attestations(issuer=ann.identity)] == [third.id]


async def test_queries_do_not_wait_for_the_writer(tmp_path: Path) -> None:
    # A peer's big batch holds the write connection for a while (signature checks,
    # commit); queries read through their own connection and answer meanwhile.
    async with open_node(config(tmp_path, "ann"), network=False) as ann:
        friend = IdentityKey.generate().identity
        made = await ann.trust(friend, 70)
        writer = ann._store
        assert isinstance(writer, ThreadedStore)
        async with writer._lock:  # the writer is busy
            with trio.fail_after(5):
                assert (await ann.status()).attestations == 1
                assert await ann.holds(made.id)
                assert await ann.score(friend) > 0
                assert len(await ann.export()) == 1


async def test_a_single_use_invite_made_after_a_rotation_is_redeemed(tmp_path: Path) -> None:
    """After `key rotate` the running node's handshakes still prove the old key (its
    network started with it, SPEC §17.4): an invite it makes must name that key, or
    the joiner, meeting another identity than the invite's inviter, never presents
    its nonce and the invite is never redeemed."""
    async with open_node(config(tmp_path, "ann")) as ann, open_node(config(tmp_path, "ben")) as ben:
        await ann.keys.commit()
        await ann.keys.rotate()
        code = ann.invite(single_use=True)
        made = decode_invite(code)
        assert made.nonce is not None
        await ben.invites.use(code, community_id=COMMUNITY, me=ben.identity, connect=ben.connect)
        with trio.fail_after(20):
            while (record := ann.invites.book.get(made.nonce)) is None or not record.used_by:  # noqa: ASYNC110  # the book, no event
                await trio.sleep(0.1)
        assert record.used_by == ben.identity


async def _redeemed_by(inviter: Node, nonce: bytes) -> object:
    with trio.fail_after(20):
        while (record := inviter.invites.book.get(nonce)) is None or not record.used_by:  # noqa: ASYNC110  # the book, no event
            await trio.sleep(0.1)
    return record.used_by


async def test_a_single_use_invite_made_before_a_rotation_is_redeemed_after_it(
    tmp_path: Path,
) -> None:
    """The invite names the key Ann had; after `key rotate` and a restart her node
    proves the next one. The person is the same (the rotation chains the keys,
    SPEC §17): Ben's node presents the nonce to the key that succeeded the one it
    names, once it holds the rotation (from Ann's node itself, on first sync)."""
    async with open_node(config(tmp_path, "ann")) as ann:
        await ann.keys.commit()
        code = ann.invite(single_use=True)
        await ann.keys.rotate()
        old = decode_invite(code).inviter
    made = decode_invite(code)
    assert made.nonce is not None
    async with open_node(config(tmp_path, "ann")) as ann, open_node(config(tmp_path, "ben")) as ben:
        assert ann.identity != old  # restarted: it proves the next key now
        await ben.invites.use(code, community_id=COMMUNITY, me=ben.identity, connect=ben.connect)
        assert ann.listen_address is not None  # a new port: the code's address is stale
        ben.connect(ann.listen_address)
        assert await _redeemed_by(ann, made.nonce) == ben.identity


async def test_a_redeemed_invite_still_admits_its_joiner_after_the_joiner_rotates(
    tmp_path: Path,
) -> None:
    """Ben's node presents its ticket on every connection. After Ben rotates and
    restarts, it presents with his next key: Ann's node, holding the rotation
    (pushed when it was made), sees the same member and moves the binding to the
    key now in use, instead of refusing Ben's own invite as used by someone else."""
    async with open_node(config(tmp_path, "ann")) as ann:
        code = ann.invite(single_use=True)
        nonce = decode_invite(code).nonce
        assert nonce is not None
        assert ann.listen_address is not None
        async with open_node(config(tmp_path, "ben")) as ben:
            await ben.invites.use(code, community_id=COMMUNITY, me=ben.identity,
                                  connect=ben.connect)  # fmt: skip
            first = ben.identity
            assert await _redeemed_by(ann, nonce) == first
            await ben.keys.commit()
            await ben.keys.rotate()
            with trio.fail_after(20):
                while not await ann.chain_of(first):  # noqa: ASYNC110  # the store, no event
                    await trio.sleep(0.1)
        async with open_node(config(tmp_path, "ben", ann.listen_address)) as ben:
            assert ben.identity != first
            with trio.fail_after(20):
                while (record := ann.invites.book.get(nonce)) is None or record.used_by == first:  # noqa: ASYNC110  # the book, no event
                    await trio.sleep(0.1)
            assert record.used_by == ben.identity
            assert ben.invites.ticket is not None
            assert ben.invites.ticket.refused is None


async def test_a_node_that_rotated_a_lost_key_does_not_present_its_invite_again(
    tmp_path: Path,
) -> None:
    """README's lost machine: Ben joins with a fresh key (the invite is bound to it),
    restores the paper next key and rotates his lost key. Restarted, his node proves
    the successor, which Ann cannot link to the fresh key: presenting the nonce again
    was refused as used by another identity (an error, the session closed)."""
    import time

    from protocol.succession import commit_statement

    lost, nxt = IdentityKey.generate(), IdentityKey.generate()
    body = AttestationBody(issuer=lost.identity, issued_at_ms=int(time.time() * 1000) - 5000,
                           statement=commit_statement(nxt.identity))  # fmt: skip
    commitment = sign_attestation(body, lost)
    async with open_node(config(tmp_path, "ann")) as ann:
        await ann.import_envelopes([commitment.data])
        code = ann.invite(single_use=True)
        nonce = decode_invite(code).nonce
        assert nonce is not None
        async with open_node(config(tmp_path, "ben")) as ben:
            await ben.invites.use(code, community_id=COMMUNITY, me=ben.identity,
                                  connect=ben.connect)  # fmt: skip
            fresh = ben.identity
            assert await _redeemed_by(ann, nonce) == fresh
            await ben.import_envelopes([commitment.data])
            assert ben.key_files is not None
            ben.key_files.restore_next(nxt)
            await ben.keys.rotate(lost=lost.identity)
            assert ben.invites.ticket is None
        assert ann.listen_address is not None
        async with open_node(config(tmp_path, "ben", ann.listen_address)) as ben:
            assert ben.identity == nxt.identity
            assert ben.invites.ticket is None  # not read back from the data directory
            with trio.fail_after(20):
                while nxt.identity not in [p.identity for p in ann.peers()]:  # noqa: ASYNC110  # no event
                    await trio.sleep(0.1)
            await trio.sleep(2.0)  # a redeem would have arrived with the hello
            assert len(ann.invites.refusals) == 0
            record = ann.invites.book.get(nonce)
            assert record is not None
            assert record.used_by == fresh
