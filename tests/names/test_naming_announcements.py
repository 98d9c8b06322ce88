"""Naming records are owed to a peer that did not name `names` neither as payloads
nor as ids (SPEC §9.2): an `ihave` of one would only make it graft a record that
the answer then leaves out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol.attestation import AttestationBody, attestation_id, sign_attestation
from protocol.identity import IdentityKey
from protocol.pushtree import TreeLink
from protocol.statement import Profile, Statement, Trust

ALICE, BOB = (IdentityKey.from_seed(bytes([n]) * 32) for n in (1, 2))


def _signed(statement: Statement) -> bytes:
    body = AttestationBody(issuer=ALICE.identity, issued_at_ms=1, statement=statement)
    return sign_attestation(body, ALICE).data


PLAIN = _signed(Trust(subject=BOB.identity, value=50))
NAMED = _signed(Trust(subject=BOB.identity, value=50, context="carpool", name="Bob"))
PROFILE = _signed(Profile(subject=ALICE.identity, name="Alice"))
NAMING = {NAMED, PROFILE}


@given(
    order=st.lists(st.sampled_from([PLAIN, NAMED, PROFILE]), max_size=6),
    eager=st.booleans(),
    roles=st.none() | st.lists(st.booleans(), min_size=6, max_size=6),
    takes_naming=st.booleans(),
)
def test_an_old_peer_is_owed_no_naming_record_nor_its_id(
    order: list[bytes], eager: bool, roles: list[bool] | None, takes_naming: bool
) -> None:
    link = TreeLink(eager=eager, takes_naming=takes_naming)
    ids = [bytes(attestation_id(e)) for e in order]
    children = None if roles is None else roles[: len(order)]
    link.owe(order, ids, children=children)
    owed = link.pending_push + link.pending_ihave
    naming_ids = {bytes(attestation_id(e)) for e in NAMING}
    if takes_naming:
        assert len(owed) == len(order)  # everything, once, as a payload or an id
    else:
        assert not NAMING & set(link.pending_push)
        assert not naming_ids & set(link.pending_ihave)
        assert len(owed) == sum(e not in NAMING for e in order)  # the rest, once
