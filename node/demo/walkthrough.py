"""`trustnode demo --walkthrough`: the layers under the demo community, one by one.

The networked demo community (`node.demo.community`) shows members gossiping;
this walkthrough shows, offline, what each layer does for a newcomer: three
members make keys, attest, certify with a private commitment, rate, revoke;
every record is encoded, decoded from bytes and verified; a tampered copy is
refused; and supersession decides what counts. Then a street of eight members
vouches for each other (and one confused member for an identity farm), and the
trust engine answers from Alice's point of view: scores, the paths behind one,
why a stranger gets nothing, what a flag does. It returns lines instead of
printing, so the CLI owns the terminal.
"""

from __future__ import annotations

from collections.abc import Iterator

import nacl.utils

from node.trust import TrustEngine
from protocol.attestation import (
    Attestation,
    AttestationBody,
    decode_attestation,
    sign_attestation,
)
from protocol.errors import RemoteProtocolError
from protocol.identity import IdentityId, IdentityKey, short_identity_text
from protocol.statement import (
    Certify,
    Kind,
    Rate,
    Revoke,
    Statement,
    Subject,
    Thing,
    Trust,
    commit_claim_value,
    is_commitment_opening,
)
from protocol.supersession import resolve_slot

__all__ = ["run_demo"]


def _describe(attestation: Attestation, names: dict[Subject, str]) -> str:
    statement = attestation.statement
    subject = names.get(statement.subject, str(statement.subject))
    issuer = names[attestation.issuer]
    if isinstance(statement, Trust):
        verb = f"trusts {subject} in {statement.context!r} at {statement.value:+d}"
    elif isinstance(statement, Certify):
        hidden = " (private value committed)" if statement.commitment else ""
        verb = f"certifies {statement.claim!r} about {subject}{hidden}"
    elif isinstance(statement, Rate):
        verb = f"rates {subject} {statement.value:+d} in {statement.context!r}"
    elif isinstance(statement, Revoke):
        verb = f"revokes their {statement.target_kind.name.lower()} of {subject}"
    else:
        verb = "publishes a profile"
    return f"{issuer} {verb}"


def run_demo(*, now_ms: int) -> Iterator[str]:
    """Yield the demo's report line by line; every figure comes from the real code."""
    alice, bob, carol = (IdentityKey.generate() for _ in range(3))
    names: dict[Subject, str] = {
        alice.identity: "alice",
        bob.identity: "bob",
        carol.identity: "carol",
    }
    yield "Three members create Ed25519 identities:"
    for key in (alice, bob, carol):
        yield f"  {names[key.identity]:<6} {short_identity_text(key.identity)}…"

    salt = nacl.utils.random(32)
    commitment = commit_claim_value(
        subject=carol.identity, claim="resident:rue-des-lilas", value=b"12 rue des Lilas", salt=salt
    )
    plan: list[tuple[IdentityKey, Statement, int]] = [
        (alice, Trust(subject=bob.identity, context="carpool", value=80), 0),
        (bob, Trust(subject=carol.identity, context="carpool", value=60), 1),
        (
            bob,
            Certify(subject=carol.identity, claim="resident:rue-des-lilas", commitment=commitment),
            2,
        ),
        (carol, Rate(subject=Thing("urn:tool:drill-7"), context="lending", value=90), 3),
        (alice, Revoke(target_kind=Kind.TRUST, subject=bob.identity, scope="carpool"), 4),
    ]
    received: list[Attestation] = []
    yield ""
    yield "They sign attestations; each travels as canonical bytes and is verified on receipt:"
    for key, statement, offset in plan:
        body = AttestationBody(
            issuer=key.identity, issued_at_ms=now_ms + offset, statement=statement
        )
        data = sign_attestation(body, key).data
        attestation = decode_attestation(data)
        received.append(attestation)
        yield f"  {len(data):>3} B  id {attestation.id.hex()[:12]}  {_describe(attestation, names)}"

    yield ""
    yield from _tamper(received[0].data)
    certification = received[2].statement
    assert isinstance(certification, Certify)
    opened = is_commitment_opening(certification, value=b"12 rue des Lilas", salt=salt)
    yield f"Carol opens Bob's commitment to a chosen verifier: {'matches' if opened else 'FAILS'}"
    current = resolve_slot([received[0], received[4]], now_ms=now_ms + 10)
    state = "empty (revoked; the older trust can never come back)" if current is None else "current"
    yield f"Alice's carpool slot for Bob after her revocation: {state}"
    yield ""
    yield from _street(now_ms=now_ms + 100)


_STREET = ("alice", "bob", "carol", "dave", "erin", "frank", "gina", "hugo")
_VOUCHES = (
    ("alice", "bob", 90), ("alice", "carol", 70), ("bob", "carol", 60), ("bob", "dave", 80),
    ("carol", "erin", 90), ("dave", "erin", 50), ("erin", "frank", 40), ("gina", "hugo", 100),
    ("carol", "alice", 80), ("dave", "bob", 90),
)  # fmt: skip


def _street(*, now_ms: int) -> Iterator[str]:
    """Transitive trust with explanations, from Alice's point of view."""
    keys = {name: IdentityKey.generate() for name in _STREET}
    farm = [IdentityKey.generate() for _ in range(20)]
    names: dict[IdentityId, str] = {k.identity: n for n, k in keys.items()}
    names.update({k.identity: f"farm{i}" for i, k in enumerate(farm)})

    def vouch(issuer: IdentityKey, subject: IdentityKey, value: int, n: int) -> Attestation:
        statement = Trust(subject=subject.identity, value=value)
        body = AttestationBody(issuer=issuer.identity, issued_at_ms=now_ms + n, statement=statement)
        return sign_attestation(body, issuer)

    made = [vouch(keys[a], keys[b], v, n) for n, (a, b, v) in enumerate(_VOUCHES)]
    made.append(vouch(keys["frank"], farm[0], 100, 50))  # frank is fooled by an identity farm
    made += [vouch(farm[i], farm[j], 100, 60 + i) for i in range(20) for j in range(20) if i != j]
    engine = TrustEngine(keys["alice"].identity, now_ms=now_ms + 1000, attestations=made)
    yield (
        f"A street of {len(_STREET)} members signs {len(_VOUCHES)} vouches; frank vouches for "
        f"one of {len(farm)} identities that all vouch for each other ({len(made)} attestations)."
    )
    yield "Alice's scores (the chance that a chain of vouches from her reaches each member):"
    ranked = sorted(names, key=lambda i: -engine.score(i))
    for identity in ranked[:7]:
        yield f"  {names[identity]:<6} {engine.score(identity):.3f}"
    farm_best = max(engine.score(k.identity) for k in farm)
    yield f"  the {len(farm)} farm identities: at most {farm_best:.3f} each"
    why = engine.explain(keys["erin"].identity)
    hops = ", ".join(f"{share:.3f} via {names[via]}" for via, share in why.first_hops)
    yield f"Why erin has {why.score:.3f}: {hops}"
    for route, share in why.paths[:2]:
        yield f"  route {' -> '.join(names[i] for i in route)}: {100 * share:.0f} % of the reach"
    stranger = engine.explain(keys["hugo"].identity)
    reason = stranger.why_not.value if stranger.why_not else "reached"
    yield f"hugo (vouched only by gina, whom nobody vouches for): {reason}"
    before = engine.score(keys["dave"].identity)
    engine.add([vouch(keys["frank"], keys["dave"], -100, 200)])
    after = engine.score(keys["dave"].identity)
    yield f"frank flags dave: {before:.3f} -> {after:.3f} (a flag removes at most 20 %)"
    engine.add([vouch(keys["alice"], keys["frank"], -100, 201)])
    farm_best = max(engine.score(k.identity) for k in farm)
    frank = engine.score(keys["frank"].identity)
    yield f"alice distrusts frank herself: frank {frank:.3f}, the farm at most {farm_best:.3f}"


def _tamper(data: bytes) -> Iterator[str]:
    """Flip one bit of the value and show that the copy is refused."""
    tampered = bytearray(data)
    tampered[-67] ^= 0x01  # the last body byte: the trust value
    try:
        decode_attestation(bytes(tampered))
    except RemoteProtocolError as exc:
        yield f"A copy with one flipped bit is refused: {exc.reason.value}"
    else:
        yield "A tampered copy was accepted: this is a bug"
