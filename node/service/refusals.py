"""What a node refuses to sign although the protocol would carry it, and how it says so.

The protocol accepts any well-formed statement (SPEC §3); a member's own node is
stricter with what it is asked to say in its member's name: a revocation of a
slot that holds nothing (a typo in the scope would otherwise "succeed" and leave
the real statement standing) and a vouch or flag for oneself (meaningless; the
trust engine ignores self-loops anyway). The embedding API, the HTTP API and the
CLI all go through `Node`, so they refuse alike, with the same `RequestError`.
"""

from __future__ import annotations

from collections.abc import Sequence

from node.errors import RequestError
from protocol.attestation import Attestation
from protocol.identity import IdentityId, encode_identity_text
from protocol.statement import Certify, Kind, Rate, Revoke, Statement, Subject, Trust

__all__ = ["check_not_self_vouch", "nothing_to_revoke"]


def check_not_self_vouch(statement: Statement, *, issuer: IdentityId) -> None:
    """Refuse a trust (vouch or flag) whose subject is its issuer.

    Raises:
        RequestError: `bad_value`.
    """
    if isinstance(statement, Trust) and statement.subject == issuer:
        raise RequestError("bad_value", "you cannot vouch for or flag yourself")


def _subject_text(subject: Subject) -> str:
    return subject if isinstance(subject, str) else encode_identity_text(subject)


def _slot_label(attestation: Attestation) -> str:
    """`trust carpool`: the KIND and SCOPE words `revoke` takes."""
    statement = attestation.statement
    assert not isinstance(statement, Revoke)  # current statements are never tombstones
    return f"{statement.kind.name.lower()} {statement.scope}"


def nothing_to_revoke(
    kind: Kind, subject: Subject, scope: str, *, held: Sequence[Attestation]
) -> RequestError:
    """The `not_found` error for revoking an empty slot, naming the slots we do hold.

    `held` is what the issuer currently says (any subject); only those about
    `subject` are named, as `revoke` would take them.
    """
    about = [
        a
        for a in held
        if isinstance(a.statement, Trust | Certify | Rate) and a.statement.subject == subject
    ]
    labels = sorted({_slot_label(a) for a in about})
    what = f"{kind.name.lower()} {scope}"
    who = _subject_text(subject)
    if labels:
        return RequestError(
            "not_found",
            f"you have no current {what!r} about {who}; you do have: {', '.join(labels)}",
        )
    return RequestError("not_found", f"you have no current {what!r} about {who}: nothing to revoke")
