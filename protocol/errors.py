"""The protocol's error hierarchy and the reasons that errors carry.

Errors are split by *who is at fault* (as h11 and trio do): a
`LocalProtocolError` is our own bug or a caller's misuse; a
`RemoteProtocolError` means bytes we received break the protocol. Every
remote error carries a `Reason`, so that the node can decide what to do with a
peer from one policy table instead of parsing messages. Messages are bounded
and safe to log: they name lengths and reasons, never key material.
"""

from __future__ import annotations

import enum

__all__ = [
    "DecodeError",
    "FieldError",
    "LocalProtocolError",
    "Reason",
    "RemoteProtocolError",
    "Severity",
    "TrustnodeError",
    "VerificationError",
    "require",
]


class Severity(enum.Enum):
    """How much a reason says about the peer that sent the offending bytes.

    `BENIGN` reasons can happen to honest peers (a clock a little ahead of ours,
    a version we do not speak yet); `FATAL` ones cannot happen without a bug or
    malice (a forged signature, a non-canonical encoding).
    """

    BENIGN = "benign"
    FATAL = "fatal"


class Reason(enum.Enum):
    """Why received bytes were refused (SPEC §7 lists them with their meaning).

    The value is the stable, lowercase code used in test vectors, logs and
    API errors; it never changes once published.
    """

    # Decoding: the bytes are not a well-formed v1 record.
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"
    TRAILING_BYTES = "trailing_bytes"
    UNKNOWN_VERSION = "unknown_version"
    UNKNOWN_KIND = "unknown_kind"
    BAD_FIELD = "bad_field"
    OUT_OF_RANGE = "out_of_range"
    NON_CANONICAL = "non_canonical"
    BAD_TEXT = "bad_text"
    BAD_CHECKSUM = "bad_checksum"
    # Verification: well-formed, but not acceptable.
    BAD_SIGNATURE = "bad_signature"
    FROM_FUTURE = "from_future"
    EXPIRED = "expired"
    # Local policy: valid, but more than this node stores for that issuer.
    QUOTA = "quota"
    # Secure channel: the handshake or a transport message does not check out.
    DECRYPT_FAILED = "decrypt_failed"
    BAD_HANDSHAKE = "bad_handshake"
    # Session: a well-formed message the connection's state does not allow
    # (anything before `hello`, a second `hello`: SPEC §9.2).
    UNEXPECTED_MESSAGE = "unexpected_message"
    # A peer that stays silent where the protocol expects it to speak (no
    # `hello` within HELLO_TIMEOUT_S of the handshake: SPEC §9.2).
    TIMEOUT = "timeout"
    # Invites (SPEC §12): a single-use invite's nonce another identity redeemed
    # already, or one presented for the first time after its expiry.
    INVITE_USED = "invite_used"
    INVITE_EXPIRED = "invite_expired"

    @property
    def severity(self) -> Severity:
        """Whether an honest peer could plausibly have caused this reason."""
        return _SEVERITY.get(self, Severity.FATAL)


# Everything not listed here is fatal: we only grant benign status on purpose.
_SEVERITY: dict[Reason, Severity] = {
    Reason.UNKNOWN_VERSION: Severity.BENIGN,
    Reason.FROM_FUTURE: Severity.BENIGN,
    Reason.EXPIRED: Severity.BENIGN,
    Reason.QUOTA: Severity.BENIGN,
    # A typo in a pasted identity is a human's slip, not an attack.
    Reason.BAD_TEXT: Severity.BENIGN,
    Reason.BAD_CHECKSUM: Severity.BENIGN,
    # A slow or overloaded honest peer can miss a deadline.
    Reason.TIMEOUT: Severity.BENIGN,
    # A forwarded or stale invite: its holder may not know someone used it first.
    Reason.INVITE_USED: Severity.BENIGN,
    Reason.INVITE_EXPIRED: Severity.BENIGN,
}


class TrustnodeError(Exception):
    """Base class of every error trustnode raises on purpose."""


class LocalProtocolError(TrustnodeError):
    """We were asked to do something the protocol forbids: a bug or misuse."""


class FieldError(LocalProtocolError):
    """A record was built with a field the protocol does not allow.

    Records validate themselves when constructed; built by our own code, a bad
    field is our bug. Decoders catch this one type and re-raise it as a
    `DecodeError` with the same reason, so validation lives in one place.

    Attributes:
        reason: `BAD_FIELD` (wrong type or size) or `OUT_OF_RANGE` (value refused).
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason


def require(condition: bool, reason: Reason, message: str) -> None:
    """Raise `FieldError(reason, message)` unless `condition`: records' field checks."""
    if not condition:
        raise FieldError(reason, message)


class RemoteProtocolError(TrustnodeError):
    """Received bytes break the protocol.

    Attributes:
        reason: the machine-readable cause; policy decisions use only this.
    """

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason


class DecodeError(RemoteProtocolError):
    """Bytes are malformed, non-canonical, oversized or of an unknown version."""


class VerificationError(RemoteProtocolError):
    """A well-formed record fails a check: signature, or time window."""
