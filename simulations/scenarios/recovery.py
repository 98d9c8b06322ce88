"""Scenario `recovery`: custodians recover a lost key; attackers with custodians cannot.

Real nodes (`Node`s from `build_node`) on the simulated network, in virtual
time. Every member vouches for `vouches` others. Two members designate the
five members after them as custodians, 3 of 5 (`Node.custodians.designate`):

* **alice loses her key**: she makes a new key; 3 of her 5 custodians sign
  recoveries naming it (`Node.custodians.recover`);
* **bob is attacked**: 2 of his custodians (k-1) name a thief's key; the other
  3 (k, all compromised) name a second thief key, and bob's phone (a device
  paired with bob's root, SPEC §16) vetoes that one within the wait; a thief
  holding bob's root key designates a 1-of-1 custodian set of its own, which
  the phone vetoes within the time lock;
* **carol's key is stolen**: carol committed to her next key (SPEC §17.1);
  the thief, who holds only her current key, signs a rotation with a key of
  its own, then a second commitment (to its key) and a rotation by that key.

Before the loss two of alice's custodians certify her `resident:` claim and
she certifies a neighbour's (with another member), so the scenario also
checks that certifications about and by her still hold for the chain.

Once every statement has spread, the network stops and the virtual clock
jumps past the waiting period (72 h; nothing else runs then, so it costs
nothing). Every node is then asked: is alice's new key her successor, with a
score ≥ 99 % of what her old key had; does every claim that held before
still hold; did either thief key become bob's, or a thief's key carol's; is
the veto visible in the node's recovery view (`Node.custodians.report`).
"""

from __future__ import annotations

import statistics

import trio

from node.trust.key_history import RecoveryState
from protocol.attestation import Attestation, AttestationBody, sign_attestation
from protocol.identity import IdentityId, IdentityKey
from protocol.recovery import DEFAULT_WAIT_MS, custodian_set_digest
from protocol.statement import Certify
from protocol.succession import commit_statement, rotation_statement
from simulations.runner import Run
from simulations.scenarios.common import in_virtual_time, new_world
from simulations.world import Member, World

WARM_UP_S = 10.0
K = 3
N_CUSTODIANS = 5
CLAIM = "resident:lilac-street"


def run(sim: Run) -> None:
    """See the module doc."""
    in_virtual_time(lambda: _main(sim), seed=sim.seed)


async def _vouch(world: World, member: Member, subject: Member, value: int) -> None:
    world.note_published(await member.node.trust(subject.identity, value))


async def _vouch_all(world: World, community: list[Member], vouches: int) -> None:
    for member in community:
        others = [m for m in community if m is not member]
        for subject in world.rng.sample(others, min(vouches, len(others))):
            await _vouch(world, member, subject, world.rng.randint(40, 100))


async def _main(sim: Run) -> None:
    world = new_world(sim)
    members = world.members
    if len(members) < 2 * N_CUSTODIANS + 4:
        raise ValueError(f"recovery needs at least {2 * N_CUSTODIANS + 4} nodes")
    alice, bob, phone = members[0], members[1], members[-1]
    community = [m for m in members if m is not phone]
    alice_custodians = community[2 : 2 + N_CUSTODIANS]
    bob_custodians = community[2 + N_CUSTODIANS : 2 + 2 * N_CUSTODIANS]
    resync = float(sim.params["resync_s"])
    new_key = IdentityKey.from_seed(sim.seed.to_bytes(32, "big")).identity
    thief_small = IdentityKey.from_seed((sim.seed + 1).to_bytes(32, "big")).identity
    thief_k = IdentityKey.from_seed((sim.seed + 2).to_bytes(32, "big")).identity
    carol = community[2 + 2 * N_CUSTODIANS]
    carol_next = IdentityKey.from_seed((sim.seed + 3).to_bytes(32, "big")).identity
    rotator = IdentityKey.from_seed((sim.seed + 4).to_bytes(32, "big"))  # the thief's keys
    committed = IdentityKey.from_seed((sim.seed + 5).to_bytes(32, "big"))
    neighbour = community[-1]
    async with trio.open_nursery() as nursery:
        await world.start(nursery)
        await trio.sleep(WARM_UP_S)
        sim.phase("vouching")
        await _vouch_all(world, community, int(sim.params["vouches"]))
        for owner, chosen in ((alice, alice_custodians), (bob, bob_custodians)):
            for c in chosen:
                await _vouch(world, owner, c, 90)
                await _vouch(world, c, owner, 80)
        await _certify(world, alice, alice_custodians[-2:], neighbour, community[2 + N_CUSTODIANS])
        world.note_published(await carol.node.issue(commit_statement(carol_next)))
        await world.wait_complete(list(world.published), timeout_s=3 * resync)
        sim.phase("pairing and designating")
        _, code = await phone.node.devices.request(bob.identity)
        await trio.sleep(resync)
        world.note_published(await bob.node.devices.approve(code))
        for owner, chosen in ((alice, alice_custodians), (bob, bob_custodians)):
            for a in await owner.node.custodians.designate(K, [c.identity for c in chosen]):
                world.note_published(a)
        await world.wait_complete(list(world.published), timeout_s=3 * resync)
        viewers = [m for m in community if m not in (alice, bob)]
        before = {m.index: await m.node.score(alice.identity) for m in viewers}
        claims_before = {m.index: await _claims(m, alice.identity, neighbour) for m in viewers}
        sim.phase("recovering and attacking")
        for c in alice_custodians[:K]:
            world.note_published(await c.node.custodians.recover(alice.identity, new_key))
        for c in bob_custodians[: K - 1]:
            world.note_published(await c.node.custodians.recover(bob.identity, thief_small))
        for c in bob_custodians[K - 1 :]:
            world.note_published(await c.node.custodians.recover(bob.identity, thief_k))
        # The thief also holds bob's root key: it swaps his custodians for one it controls.
        swap = await bob.node.custodians.designate(1, [bob_custodians[0].identity])
        for a in swap:
            world.note_published(a)
        await _steal_carols_key(world, carol, (rotator, committed), importer=community[3])
        await trio.sleep(1.0)
        world.note_published(await phone.node.custodians.veto(thief_k))
        digest = custodian_set_digest(1, [bob_custodians[0].identity])  # the swap's D
        world.note_published(await phone.node.custodians.veto(digest))
        spread = await world.wait_complete(list(world.published), timeout_s=3 * resync)
        world.stop(nursery)
    sim.phase("after the waiting period")
    early = await viewers[0].node.ask(lambda e: e.member(new_key))
    await trio.sleep(DEFAULT_WAIT_MS / 1000 + 60)  # nothing runs: the clock jumps
    found = await _measure(viewers, before, alice, bob, phone, (new_key, thief_small, thief_k))
    ratios, successor_everywhere, thieves_nowhere, veto_seen, attack_complete, kept = found
    thief_keys = (rotator.identity, committed.identity)
    carol_kept = [await m.node.ask(lambda e: [e.member(k) for k in thief_keys]) for m in viewers]
    rotation_refused = all(seen == list(thief_keys) for seen in carol_kept)
    claims_after = {m.index: await _claims(m, new_key, neighbour) for m in viewers}
    held = [(m, c) for m in viewers for c, ok in enumerate(claims_before[m.index]) if ok]
    claims_kept = all(claims_after[m.index][c] for m, c in held)
    chains = [await m.node.devices.succession(new_key) for m in viewers]
    chain_shown = all([k for k, _ in c.chain] == [alice.identity, new_key] for c in chains)
    explained = [await _explained(m, alice, bob, phone, new_key, thief_k) for m in viewers]
    sim.figure("statements spread in", spread if spread is not None else float("inf"), "s")
    sim.figure("viewers", len(viewers))
    sim.figure("alice: new key's score / old key's, min", min(ratios) if ratios else 0.0)
    sim.figure("alice: new key's score / old key's, mean",
               statistics.fmean(ratios) if ratios else 0.0)  # fmt: skip
    sim.figure("alice: old key's mean score before", statistics.fmean(before.values()))
    sim.figure("claims held before (about alice, by alice)", len(held))
    recovered = successor_everywhere and early != alice.identity
    sim.claim("3 of 5 custodians recover: the new key is alice's successor at every node "
              "after the waiting period, not before", recovered)  # fmt: skip
    sim.claim("alice's score from every other member is >= 99 % of before",
              bool(ratios) and min(ratios) >= 0.99,
              f"{len(ratios)} viewers with a score")  # fmt: skip
    sim.claim("every claim about alice or certified by her that held at a node before the loss "
              "still holds there for her new key", bool(held) and claims_kept,
              f"{len(held)} of {2 * len(viewers)} held before")  # fmt: skip
    sim.claim("a thief with carol's current key cannot rotate it: neither of its keys is carol's "
              "at any node (pre-commitment)", rotation_refused)  # fmt: skip
    sim.claim("k-1 custodians cannot recover, and k are vetoed by bob's phone: neither thief "
              "key is bob's at any node", thieves_nowhere)  # fmt: skip
    sim.claim("the phone's veto is visible in every node's recovery view of bob", veto_seen)
    sim.claim("explain at every node says alice's key was recovered by custodians, and shows "
              "the phone's veto of the attack on bob", all(explained))  # fmt: skip
    sim.claim("every node's identity chain view shows alice's lost key, then the new one",
              chain_shown)  # fmt: skip
    sim.claim("the k-custodian attack was complete and past its wait (only the veto stopped it)",
              attack_complete)  # fmt: skip
    sim.claim("a thief with bob's root key swaps his custodians: the phone vetoes it, the "
              "original 3 of 5 stays in force at every node (past the lock)", kept)  # fmt: skip


async def _certify(
    world: World, alice: Member, hers: list[Member], neighbour: Member, other: Member
) -> None:
    """Two of alice's custodians certify her claim; she and `other` certify the neighbour's."""
    for certifier, subject in [*((c, alice) for c in hers), (alice, neighbour), (other, neighbour)]:
        certificate = await certifier.node.certify(subject.identity, CLAIM)
        world.note_published(certificate.attestation)


async def _steal_carols_key(
    world: World, carol: Member, thief: tuple[IdentityKey, IdentityKey], importer: Member
) -> None:
    """A thief holding only carol's current key tries both ways to rotate it (SPEC §17):
    a rotation signed by a key of its own, then a second commitment and that key's rotation."""
    rotator, committed = thief
    forged = [sign(rotator, world.clock_ms(), rotation_statement(carol.identity, None))]
    world.note_published(await carol.node.issue(commit_statement(committed.identity)))
    forged.append(sign(committed, world.clock_ms() + 1, rotation_statement(carol.identity, None)))
    await importer.node.import_envelopes([a.data for a in forged])
    for a in forged:
        world.note_published(a)


def sign(key: IdentityKey, at_ms: int, statement: Certify) -> Attestation:
    """An attestation `key` signs at `at_ms` (the thief's keys belong to no node)."""
    return sign_attestation(AttestationBody(issuer=key.identity, issued_at_ms=at_ms,
                                            statement=statement), key)  # fmt: skip


async def _claims(m: Member, subject: IdentityId, neighbour: Member) -> list[bool]:
    """Whether m accepts the claim about `subject` (alice) and the one alice certified."""
    about = await m.node.claim(subject, CLAIM)
    by = await m.node.claim(neighbour.identity, CLAIM)
    return [about.accepted, by.accepted]


async def _explained(
    m: Member, alice: Member, bob: Member, phone: Member, new_key: IdentityId, thief: IdentityId
) -> bool:
    """Issue 26: `explain` shows succession, and a veto that blocked a recovery."""
    alice_why = await m.node.explain(new_key)
    steps = [(s.old, s.new, s.how) for s in alice_why.keys.chain]
    bob_why = await m.node.explain(bob.identity)
    vetoed = [
        r for r in bob_why.keys.recoveries
        if r.new == thief and r.state is RecoveryState.VETOED
        and any(key == phone.identity for key, _ in r.vetoed_by)
    ]  # fmt: skip
    return steps == [(alice.identity, new_key, "recovery")] and bool(vetoed)


async def _measure(
    viewers: list[Member],
    before: dict[int, float],
    alice: Member,
    bob: Member,
    phone: Member,
    keys: tuple[IdentityId, IdentityId, IdentityId],
) -> tuple[list[float], bool, bool, bool, bool, bool]:
    """Every viewer's reading: score ratios, successor, thieves, veto seen, attack complete."""
    new_key, thief_small, thief_k = keys
    ratios: list[float] = []
    successor_everywhere = thieves_nowhere = veto_seen = attack_complete = True
    original_kept = True
    for m in viewers:
        node = m.node
        seen = await node.ask(lambda e: [e.member(k) for k in keys])
        successor_everywhere &= seen[0] == alice.identity
        thieves_nowhere &= seen[1] == thief_small and seen[2] == thief_k
        after = await node.score(new_key)
        if before[m.index] > 0:
            ratios.append(after / before[m.index])
        report = await node.custodians.report(bob.identity)
        vetoed = [r for r in report.recoveries if r.new == thief_k]
        veto_seen &= bool(vetoed) and any(k == phone.identity for k, _ in vetoed[0].vetoed_by)
        effective = vetoed[0].effective_at_ms if vetoed else None
        attack_complete &= effective is not None and effective <= report.now_ms
        # The swapped-in designation is vetoed: the original 3 of 5 stays in force.
        original_kept &= report.in_force is not None and report.in_force.k == K
        original_kept &= any(v for _, _, v in report.designations)
    return ratios, successor_everywhere, thieves_nowhere, veto_seen, attack_complete, original_kept
