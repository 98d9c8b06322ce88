"""Naming records never reach a peer that did not say `names` (SPEC §9.2)."""

from __future__ import annotations

import trio

from node.gossip.session import CAPABILITIES, PeerSession
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.statement import Profile, Trust
from protocol.wire import Deliver, Message, Push, decode_message

ALICE, BOB = (IdentityKey.from_seed(bytes([n]) * 32) for n in (1, 2))


def _records() -> tuple[bytes, bytes, bytes]:
    def sign(statement: Profile | Trust) -> bytes:
        body = AttestationBody(issuer=ALICE.identity, issued_at_ms=1, statement=statement)
        return sign_attestation(body, ALICE).data

    return (
        sign(Trust(subject=BOB.identity, value=50)),
        sign(Trust(subject=BOB.identity, value=50, context="carpool", name="Bob")),
        sign(Profile(subject=ALICE.identity, name="Alice")),
    )


def _sent(peer: PeerSession) -> list[Message]:
    out: list[Message] = []
    while True:
        try:
            data = peer.inbox.receive_nowait()
        except trio.WouldBlock:
            return out
        out.append(decode_message(data[4:]))


async def test_old_peers_get_no_naming_records() -> None:
    plain, named, profile = _records()
    old = PeerSession(identity=BOB.identity, stream=None, dialled=True)  # type: ignore[arg-type]
    await old.send(Push(envelopes=(plain, named, profile)))
    await old.send(Deliver(envelopes=(named, profile)))  # nothing left: nothing sent
    assert _sent(old) == [Push(envelopes=(plain,))]


async def test_peers_that_say_names_get_everything() -> None:
    assert "names" in CAPABILITIES
    plain, named, profile = _records()
    new = PeerSession(identity=BOB.identity, stream=None, dialled=True)  # type: ignore[arg-type]
    new.names = True
    await new.send(Push(envelopes=(plain, named, profile)))
    assert _sent(new) == [Push(envelopes=(plain, named, profile))]
