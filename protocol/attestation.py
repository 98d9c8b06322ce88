"""The signed attestation: canonical encoding, signing, decoding, verification, ids.

This module owns the v1 record that peers exchange (SPEC §2-§4). The path from
peer bytes to something the node may act on has two typed steps, and the types
say which step a value has passed:

    bytes --decode_envelope--> SignedEnvelope --verify_envelope--> Attestation
           (DecodeError)       decoded, unchecked  (VerificationError)  verified

Cheap checks come first (length, structure, canonical form), the signature
last. Nothing here reads a clock: freshness takes `now_ms` as an argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import nacl.bindings
import nacl.exceptions

from protocol.attestation_records import (
    _BODY_BYTES,
    ATTESTATION_ID_BYTES,
    FORMAT_VERSION,
    ID_PREFIX_BYTES,
    MAX_ENVELOPE_BYTES,
    MAX_TIME_MS,
    SIGNATURE_DOMAIN,
    Attestation,
    AttestationBody,
    AttestationId,
    SignedEnvelope,
    _envelope_bytes,
    attestation_id,
    encode_body,
    envelope_issuer,
    is_naming_envelope,
    split_id_prefixes,
)
from protocol.envelope_decoding import decode_envelope
from protocol.errors import (
    LocalProtocolError,
    Reason,
    VerificationError,
)
from protocol.identity import IdentityKey

__all__ = [
    "ATTESTATION_ID_BYTES",
    "FORMAT_VERSION",
    "ID_PREFIX_BYTES",
    "MAX_ENVELOPE_BYTES",
    "MAX_TIME_MS",
    "SIGNATURE_DOMAIN",
    "Attestation",
    "AttestationBody",
    "AttestationId",
    "SignedEnvelope",
    "attestation_id",
    "check_fresh",
    "decode_attestation",
    "decode_envelope",
    "encode_body",
    "envelope_issuer",
    "is_naming_envelope",
    "open_signed",
    "sign_attestation",
    "signed_message",
    "split_id_prefixes",
    "verified_by",
    "verify_envelope",
]
_crypto_sign_open = nacl.bindings.crypto_sign_open


def sign_attestation(body: AttestationBody, key: IdentityKey) -> Attestation:
    """Sign `body` with `key` (SPEC §4.1).

    Raises:
        LocalProtocolError: `key` is not the body's issuer.
    """
    if key.identity != body.issuer:
        raise LocalProtocolError("the signing key is not the issuer's")
    body_bytes = encode_body(body)
    signature = key.sign(SIGNATURE_DOMAIN + body_bytes)
    data = _envelope_bytes(body_bytes, signature)
    return Attestation(SignedEnvelope(body=body, signature=signature, data=data))


def verify_envelope(envelope: SignedEnvelope) -> Attestation:
    """Check the issuer's signature and return the verified `Attestation` (SPEC §4.2).

    Verification is libsodium's strict Ed25519: it refuses non-canonical `S`,
    non-canonical or small-order public keys and small-order `R`.

    Raises:
        VerificationError: `BAD_SIGNATURE`.
    """
    # signed_message(envelope), inline: this runs once per record received.
    # One join allocates once; `a + b + c` builds and drops a second string.
    signed = b"".join((envelope.signature, SIGNATURE_DOMAIN, envelope.data[_BODY_BYTES]))
    try:
        _crypto_sign_open(signed, envelope.body.issuer)
    except nacl.exceptions.BadSignatureError:
        raise VerificationError(Reason.BAD_SIGNATURE, "signature does not verify") from None
    return Attestation(envelope)


def signed_message(envelope: SignedEnvelope) -> tuple[bytes, bytes]:
    """What libsodium's `crypto_sign_open` checks for `envelope`: (signature ||
    domain || body, the issuer's public key) (SPEC §4.2)."""
    signed = b"".join((envelope.signature, SIGNATURE_DOMAIN, envelope.data[_BODY_BYTES]))
    return signed, envelope.body.issuer


def open_signed(messages: Sequence[tuple[bytes, bytes]]) -> bytes:
    """One byte per (signed message, key) of `signed_message`: 1 if it verifies, else 0.

    Plain bytes in and out, so it can run in another process (node/signatures)
    and pays no decoding there: the caller decoded the envelopes already.
    """
    verdicts = bytearray(len(messages))
    for n, (signed, key) in enumerate(messages):
        try:
            nacl.bindings.crypto_sign_open(signed, key)
        except nacl.exceptions.CryptoError:  # a bad signature, a key of the wrong size
            continue
        verdicts[n] = 1
    return bytes(verdicts)


def verified_by(envelopes: Sequence[SignedEnvelope], verdicts: bytes) -> list[Attestation]:
    """The envelopes whose verdict from `open_signed` is 1, as verified `Attestation`s.

    `verdicts` must be `open_signed` of `[signed_message(e) for e in envelopes]`,
    in that order, computed by this node (a worker process of its own): the
    result is the same as `verify_envelope` on each, minus the refused ones.

    Raises:
        LocalProtocolError: `verdicts` does not have one byte per envelope.
    """
    if len(verdicts) != len(envelopes):
        raise LocalProtocolError(f"{len(verdicts)} verdicts for {len(envelopes)} envelopes")
    return [Attestation(e) for e, ok in zip(envelopes, verdicts, strict=True) if ok == 1]


def decode_attestation(data: bytes, *, max_bytes: int = MAX_ENVELOPE_BYTES) -> Attestation:
    """Decode and verify in one step: `verify_envelope(decode_envelope(data))`.

    Raises:
        DecodeError: see `decode_envelope`.
        VerificationError: see `verify_envelope`.
    """
    return verify_envelope(decode_envelope(data, max_bytes=max_bytes))


def check_fresh(attestation: Attestation, *, now_ms: int, max_skew_ms: int) -> None:
    """Refuse an attestation issued too far in our future (SPEC §4.3).

    A clock a little ahead is an honest mistake, so the reason is benign: the
    same attestation may be accepted later, when our clock has caught up.

    Raises:
        VerificationError: `FROM_FUTURE` if `issued_at_ms > now_ms + max_skew_ms`.
    """
    if attestation.issued_at_ms > now_ms + max_skew_ms:
        ahead_ms = attestation.issued_at_ms - now_ms
        raise VerificationError(Reason.FROM_FUTURE, f"issued {ahead_ms} ms in our future")
