"""The JSON view of an attestation that the CLI and the local API print.

One function, so that `trustnode attest --json`, `trustnode verify --json` and
the API agree on field names: identities in their `tn_` text form, bytes in hex,
times in unix milliseconds.
"""

from __future__ import annotations

from typing import Any

from protocol.attestation import Attestation
from protocol.identity import IdentityId, encode_identity_text
from protocol.statement import Certify, Profile, Rate, Revoke, Statement, Subject, Trust

__all__ = ["attestation_to_json", "subject_to_json"]


def subject_to_json(subject: Subject) -> str:
    """An identity as `tn_...`, a thing as its URI."""
    if isinstance(subject, str):
        return subject
    return encode_identity_text(IdentityId(subject))


def _statement_to_json(statement: Statement) -> dict[str, Any]:
    fields: dict[str, Any] = {"subject": subject_to_json(statement.subject)}
    if isinstance(statement, Trust):
        fields.update(context=statement.context, value=statement.value)
        if statement.name is not None:
            fields.update(name=statement.name)
    elif isinstance(statement, Certify):
        commitment = statement.commitment
        fields.update(
            claim=statement.claim, commitment=None if commitment is None else commitment.hex()
        )
    elif isinstance(statement, Rate):
        fields.update(
            context=statement.context, value=statement.value, reference=statement.reference
        )
    elif isinstance(statement, Revoke):
        fields.update(target_kind=statement.target_kind.name.lower(), scope=statement.scope)
    elif isinstance(statement, Profile):
        fields.update(name=statement.name, about=statement.about)
    return fields


def attestation_to_json(attestation: Attestation) -> dict[str, Any]:
    """Every field of a verified attestation, plus its id, slot id and raw envelope."""
    return {
        "id": attestation.id.hex(),
        "kind": attestation.kind.name.lower(),
        "issuer": encode_identity_text(attestation.issuer),
        "issued_at_ms": attestation.issued_at_ms,
        "expires_at_ms": attestation.expires_at_ms,
        **_statement_to_json(attestation.statement),
        "slot_id": attestation.slot.id.hex(),
        "envelope": attestation.data.hex(),
    }
