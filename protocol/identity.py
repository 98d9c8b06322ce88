"""Ed25519 identities: signing keys, public ids, and the text form people copy.

An identity *is* its Ed25519 public key (32 bytes, SPEC §1). This module owns
the key pair wrapper (backed by PyNaCl, which wraps libsodium) and the text
form `tn_` + base32 of the key and a 4-byte checksum, so that a mistyped or
truncated id is refused instead of silently naming somebody else. It draws no
randomness itself: `IdentityKey.generate()` asks libsodium, and
`IdentityKey.from_seed()` makes vectors and simulations reproducible.
"""

from __future__ import annotations

import hashlib
from typing import NewType

import nacl.bindings
import nacl.signing

from protocol.errors import DecodeError, LocalProtocolError, Reason
from protocol.text import decode_base32, encode_base32

__all__ = [
    "IDENTITY_BYTES",
    "IDENTITY_TEXT_PREFIX",
    "SEED_BYTES",
    "SIGNATURE_BYTES",
    "IdentityId",
    "IdentityKey",
    "decode_identity",
    "decode_identity_text",
    "encode_identity_text",
    "identity_checksum",
    "is_valid_public_key",
    "short_identity_text",
]

IdentityId = NewType("IdentityId", bytes)

IDENTITY_BYTES = 32
SEED_BYTES = 32
SIGNATURE_BYTES = 64
IDENTITY_TEXT_PREFIX = "tn_"
_CHECKSUM_BYTES = 4
_CHECKSUM_DOMAIN = b"trustnode/identity-text/v1\x00"
# 36 bytes are 288 bits: 58 base32 characters, the last one carrying 3 data
# bits and 2 zero bits.
_TEXT_BODY_CHARS = 58


class IdentityKey:
    """An Ed25519 signing key and the identity it proves.

    Only this class and PyNaCl ever touch the secret seed; `repr` never shows it.
    """

    __slots__ = ("_identity", "_signing_key")

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        self._signing_key = signing_key
        self._identity = IdentityId(bytes(signing_key.verify_key))

    @classmethod
    def generate(cls) -> IdentityKey:
        """Make a new key from libsodium's CSPRNG."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKey:
        """Derive the key from a 32-byte secret seed (RFC 8032 private key).

        Raises:
            LocalProtocolError: the seed is not exactly 32 bytes.
        """
        if type(seed) is not bytes or len(seed) != SEED_BYTES:
            raise LocalProtocolError(f"an Ed25519 seed has {SEED_BYTES} bytes")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def identity(self) -> IdentityId:
        """The public identity: the 32-byte Ed25519 public key."""
        return self._identity

    @property
    def seed(self) -> bytes:
        """The secret seed, for storing the key; handle with care."""
        return bytes(self._signing_key)

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached Ed25519 signature of `message`."""
        return self._signing_key.sign(message).signature

    def __repr__(self) -> str:
        return f"IdentityKey({short_identity_text(self._identity)})"


def decode_identity(data: bytes) -> IdentityId:
    """Accept `data` as an identity if it is exactly 32 bytes.

    Whether the bytes are a usable Ed25519 key is decided where it matters: an
    issuer's key is checked by signature verification (SPEC §4); a subject that
    is not a valid key is harmless, since it can never sign anything.

    Raises:
        DecodeError: `BAD_FIELD` if `data` is not 32 bytes.
    """
    if type(data) is not bytes or len(data) != IDENTITY_BYTES:
        raise DecodeError(Reason.BAD_FIELD, f"an identity has {IDENTITY_BYTES} bytes")
    return IdentityId(data)


def identity_checksum(identity: IdentityId) -> bytes:
    """The 4-byte checksum of the text form (SPEC §1.2)."""
    return hashlib.blake2b(_CHECKSUM_DOMAIN + identity, digest_size=32).digest()[:_CHECKSUM_BYTES]


def encode_identity_text(identity: IdentityId) -> str:
    """Render `identity` as `tn_` + 58 lowercase base32 characters (SPEC §1.2).

    Raises:
        LocalProtocolError: `identity` is not 32 bytes.
    """
    if len(identity) != IDENTITY_BYTES:
        raise LocalProtocolError(f"an identity has {IDENTITY_BYTES} bytes")
    return IDENTITY_TEXT_PREFIX + encode_base32(identity + identity_checksum(identity))


def decode_identity_text(text: str) -> IdentityId:
    """Parse the text form strictly: prefix, length, alphabet, padding bits, checksum.

    Upper case, whitespace and `=` padding are refused rather than tolerated, so
    that each identity has exactly one text form that can be compared as a string.

    Raises:
        DecodeError: `BAD_TEXT` for anything but the canonical shape,
            `BAD_CHECKSUM` when the shape is right but the checksum is not.
    """
    if type(text) is not str or not text.startswith(IDENTITY_TEXT_PREFIX):
        raise DecodeError(Reason.BAD_TEXT, f"an identity starts with {IDENTITY_TEXT_PREFIX!r}")
    body = text[len(IDENTITY_TEXT_PREFIX) :]
    if len(body) != _TEXT_BODY_CHARS:
        raise DecodeError(
            Reason.BAD_TEXT,
            f"an identity has {_TEXT_BODY_CHARS} letters and digits 2 to 7 after the prefix",
        )
    raw = decode_base32(body)  # BAD_TEXT for other characters or spare bits set
    identity = IdentityId(raw[:IDENTITY_BYTES])
    if raw[IDENTITY_BYTES:] != identity_checksum(identity):
        raise DecodeError(Reason.BAD_CHECKSUM, "identity checksum does not match")
    return identity


def short_identity_text(identity: IdentityId) -> str:
    """A short, human-friendly label (`tn_` + 8 characters) for logs and tables.

    Never use it to identify anyone: it is not collision resistant.
    """
    return encode_identity_text(identity)[: len(IDENTITY_TEXT_PREFIX) + 8]


def is_valid_public_key(identity: IdentityId) -> bool:
    """Whether `identity` is a canonical Ed25519 point of prime order (libsodium's check).

    It costs about a signature verification, so we call it on human input
    (keys typed or imported), never per attestation.
    """
    return bool(nacl.bindings.crypto_core_ed25519_is_valid_point(identity))
