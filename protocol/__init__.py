"""trustnode's wire protocol: pure, sans-I/O, no clocks, no randomness (DESIGN §2).

Everything a compatible implementation must agree on lives here and in
`SPEC.md` beside this file: identities, attestations, supersession, and (in
later modules) the handshake, wire messages and set reconciliation.
"""

from __future__ import annotations

from protocol.attestation import (
    FORMAT_VERSION,
    MAX_ENVELOPE_BYTES,
    Attestation,
    AttestationBody,
    AttestationId,
    SignedEnvelope,
    attestation_id,
    check_fresh,
    decode_attestation,
    decode_envelope,
    encode_body,
    sign_attestation,
    verify_envelope,
)
from protocol.errors import (
    DecodeError,
    FieldError,
    LocalProtocolError,
    Reason,
    RemoteProtocolError,
    Severity,
    TrustnodeError,
    VerificationError,
)
from protocol.identity import (
    IdentityId,
    IdentityKey,
    decode_identity,
    decode_identity_text,
    encode_identity_text,
    short_identity_text,
)
from protocol.statement import (
    GENERAL_CONTEXT,
    Certify,
    Kind,
    Rate,
    Revoke,
    Slot,
    SlotId,
    Statement,
    Subject,
    Thing,
    Trust,
    commit_claim_value,
    is_commitment_opening,
)
from protocol.supersession import (
    is_current,
    is_expired,
    order_key,
    resolve_slot,
    slot_head,
    supersedes,
)

__all__ = [
    "FORMAT_VERSION",
    "GENERAL_CONTEXT",
    "MAX_ENVELOPE_BYTES",
    "Attestation",
    "AttestationBody",
    "AttestationId",
    "Certify",
    "DecodeError",
    "FieldError",
    "IdentityId",
    "IdentityKey",
    "Kind",
    "LocalProtocolError",
    "Rate",
    "Reason",
    "RemoteProtocolError",
    "Revoke",
    "Severity",
    "SignedEnvelope",
    "Slot",
    "SlotId",
    "Statement",
    "Subject",
    "Thing",
    "Trust",
    "TrustnodeError",
    "VerificationError",
    "attestation_id",
    "check_fresh",
    "commit_claim_value",
    "decode_attestation",
    "decode_envelope",
    "decode_identity",
    "decode_identity_text",
    "encode_body",
    "encode_identity_text",
    "is_commitment_opening",
    "is_current",
    "is_expired",
    "order_key",
    "resolve_slot",
    "short_identity_text",
    "sign_attestation",
    "slot_head",
    "supersedes",
    "verify_envelope",
]
