"""`distrust_body`: a flag that never loses a same-millisecond tie to a vouch.

A distrust is a `Trust` statement with a negative value, so it shares its
slot (issuer, trust, subject, context; SPEC §5.1) with the issuer's vouch
for the same subject: the newer one replaces the other. Two statements of
one slot dated the same millisecond are ordered by attestation id (SPEC
§5.2): deterministic, every node agrees, but arbitrary, so a flag issued in
the same millisecond as a vouch loses half the time, silently.

The node's own `issue` already dates every statement after its slot's head.
Library users (apps, simulations) building attestations themselves use this
helper: it dates the flag strictly after the statement it replaces, and
refuses what would not supersede it.
"""

from __future__ import annotations

from protocol.attestation import Attestation, AttestationBody
from protocol.errors import LocalProtocolError
from protocol.identity import IdentityId
from protocol.statement import GENERAL_CONTEXT, Trust

__all__ = ["distrust_body"]


def distrust_body(
    issuer: IdentityId,
    subject: IdentityId,
    *,
    value: int,
    now_ms: int,
    previous: Attestation | None,
    context: str = GENERAL_CONTEXT,
    expires_at_ms: int | None = None,
) -> AttestationBody:
    """The body of `issuer`'s distrust of `subject`, dated to supersede `previous`.

    `previous` is the slot's current head as the caller holds it (None if
    there is none): the result is dated max(now_ms, previous.issued_at_ms + 1).

    Raises:
        LocalProtocolError: `value` is not in -100..-1, or `previous` is a
            statement of another slot, or the flag would expire before it
            is dated.
    """
    if not -100 <= value <= -1:
        raise LocalProtocolError("a distrust has a value in -100..-1")
    statement = Trust(subject=subject, value=value, context=context)
    issued = now_ms
    if previous is not None:
        probe = AttestationBody(issuer=issuer, issued_at_ms=now_ms, statement=statement)
        if previous.slot != probe.slot:
            raise LocalProtocolError("previous is not a statement of this slot")
        issued = max(now_ms, previous.issued_at_ms + 1)
    if expires_at_ms is not None and expires_at_ms <= issued:
        raise LocalProtocolError("the flag would expire before it is dated")
    return AttestationBody(
        issuer=issuer, issued_at_ms=issued, expires_at_ms=expires_at_ms, statement=statement
    )
