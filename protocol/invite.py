"""Invites: a signed, copy-pasteable code that lets someone join a community (SPEC §12).

An invite carries what a newcomer needs to connect (community id, the community
key of a closed community, bootstrap addresses) and who invites them, signed by
the inviter so that a tampered code is refused. It is a capability: whoever
holds the code of a closed community holds its key. Sans-I/O: time arrives as
`now_ms`, nonces as arguments.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions

from protocol.codec import Value, pack, unpack
from protocol.errors import DecodeError, FieldError, Reason, VerificationError, require
from protocol.identity import IdentityId, IdentityKey
from protocol.text import decode_base32, encode_base32

__all__ = [
    "INVITE_PREFIX",
    "Invite",
    "IssuedInvite",
    "check_invite",
    "decode_invite",
    "encode_invite",
    "open_community_key",
    "redeem",
    "sign_invite",
]

INVITE_PREFIX = "tninvite1_"
INVITE_VERSION = 1
_DOMAIN = b"trustnode/invite/v1\x00"
_OPEN_KEY_DOMAIN = b"trustnode/open-community-key/v1\x00"
_MAX_TEXT = 2048
_MAX_BOOTSTRAP = 8
_NONCE_BYTES = 16
# host:port with a DNS name, an IPv4 address or a bracketed IPv6 address.
_ADDRESS = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}")


def open_community_key(community_id: bytes) -> bytes:
    """The key of an *open* community: derived from its id, so it is public by design."""
    return hashlib.blake2b(_OPEN_KEY_DOMAIN + community_id, digest_size=32).digest()


def _check_address(address: object) -> None:
    require(type(address) is str, Reason.BAD_FIELD, "an address is a string")
    assert isinstance(address, str)
    require(_ADDRESS.fullmatch(address) is not None, Reason.OUT_OF_RANGE, "address is host:port")
    require(1 <= int(address.rsplit(":", 1)[1]) <= 65535, Reason.OUT_OF_RANGE, "port 1..65535")


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    """The signed content of an invite.

    `community_key` is None for an open community (its key is
    `open_community_key(community_id)`); `nonce` marks a single-use invite,
    which the inviter's node accepts once.
    """

    community_id: bytes
    community_key: bytes | None
    bootstrap: tuple[str, ...]
    inviter: IdentityId
    expires_at_ms: int | None = None
    nonce: bytes | None = None

    def __post_init__(self) -> None:
        for name, value, size in (
            ("community_id", self.community_id, 32),
            ("inviter", self.inviter, 32),
        ):
            require(type(value) is bytes and len(value) == size, Reason.BAD_FIELD, name)
        require(
            self.community_key is None
            or (type(self.community_key) is bytes and len(self.community_key) == 32),
            Reason.BAD_FIELD,
            "community_key",
        )
        require(
            self.nonce is None or (type(self.nonce) is bytes and len(self.nonce) == _NONCE_BYTES),
            Reason.BAD_FIELD,
            "nonce",
        )
        require(type(self.bootstrap) is tuple, Reason.BAD_FIELD, "bootstrap is an array")
        require(1 <= len(self.bootstrap) <= _MAX_BOOTSTRAP, Reason.OUT_OF_RANGE, "1..8 addresses")
        for address in self.bootstrap:
            _check_address(address)
        if self.expires_at_ms is not None:
            require(type(self.expires_at_ms) is int, Reason.BAD_FIELD, "expires_at_ms")
            require(0 <= self.expires_at_ms < 2**53, Reason.OUT_OF_RANGE, "expires_at_ms")

    @property
    def key(self) -> bytes:
        """The community key to connect with."""
        if self.community_key is not None:
            return self.community_key
        return open_community_key(self.community_id)

    def _fields(self) -> tuple[Value, ...]:
        return (
            INVITE_VERSION,
            self.community_id,
            self.community_key,
            self.bootstrap,
            self.inviter,
            self.expires_at_ms,
            self.nonce,
        )


def sign_invite(invite: Invite, key: IdentityKey) -> str:
    """The invite's text code, signed by the inviter.

    Raises:
        FieldError: `key` is not the inviter's.
    """
    if key.identity != invite.inviter:
        raise FieldError(Reason.BAD_FIELD, "the signing key is not the inviter's")
    body = pack(invite._fields())
    signature = key.sign(_DOMAIN + body)
    return encode_invite(pack((body, signature)))


def encode_invite(data: bytes) -> str:
    """Text form: the prefix and lowercase, unpadded base32 of the signed bytes."""
    return INVITE_PREFIX + encode_base32(data)


def decode_invite(text: str) -> Invite:
    """Parse and verify an invite code (expiry is checked by `check_invite`).

    Raises:
        DecodeError: `BAD_TEXT` (not an invite code), `MALFORMED`,
            `TRAILING_BYTES`, `UNKNOWN_VERSION`, `BAD_FIELD`, `OUT_OF_RANGE`
            or `NON_CANONICAL`.
        VerificationError: `BAD_SIGNATURE` (tampered, or not by the inviter).
    """
    text = text.strip()
    if not text.startswith(INVITE_PREFIX) or len(text) > _MAX_TEXT:
        raise DecodeError(Reason.BAD_TEXT, f"an invite starts with {INVITE_PREFIX!r}")
    body_text = text[len(INVITE_PREFIX) :]
    if not body_text:
        raise DecodeError(Reason.BAD_TEXT, "an invite is lowercase base32 after its prefix")
    data = decode_base32(body_text)
    body, signature = _split(data)
    invite = _parse_body(body)
    try:
        nacl.bindings.crypto_sign_open(signature + _DOMAIN + body, invite.inviter)
    except nacl.exceptions.BadSignatureError:
        raise VerificationError(Reason.BAD_SIGNATURE, "invite signature") from None
    return invite


def _split(data: bytes) -> tuple[bytes, bytes]:
    outer = unpack(data)
    if type(outer) is not tuple or len(outer) != 2:
        raise DecodeError(Reason.MALFORMED, "an invite is [body, signature]")
    body, signature = outer
    if type(body) is not bytes or type(signature) is not bytes or len(signature) != 64:
        raise DecodeError(Reason.BAD_FIELD, "invite body and 64-byte signature")
    if pack((body, signature)) != data:
        raise DecodeError(Reason.NON_CANONICAL, "invite encoding")
    return body, signature


def _parse_body(body: bytes) -> Invite:
    fields = unpack(body)
    if type(fields) is not tuple or not fields or type(fields[0]) is not int:
        raise DecodeError(Reason.MALFORMED, "an invite body is [version, ...]")
    if fields[0] != INVITE_VERSION:
        raise DecodeError(Reason.UNKNOWN_VERSION, f"invite version {fields[0]}")
    if len(fields) != 7:
        raise DecodeError(Reason.BAD_FIELD, "an invite body has 7 fields")
    _, community_id, community_key, bootstrap, inviter, expires_at_ms, nonce = fields
    try:
        invite = Invite(
            community_id=community_id,  # checked by Invite itself
            community_key=community_key,
            bootstrap=bootstrap,
            inviter=inviter,
            expires_at_ms=expires_at_ms,
            nonce=nonce,
        )
    except FieldError as exc:
        raise DecodeError(exc.reason, str(exc)) from exc
    if pack(invite._fields()) != body:
        raise DecodeError(Reason.NON_CANONICAL, "invite body encoding")
    return invite


def check_invite(invite: Invite, *, now_ms: int) -> None:
    """Refuse an expired invite.

    Raises:
        VerificationError: `EXPIRED`.
    """
    if invite.expires_at_ms is not None and now_ms >= invite.expires_at_ms:
        raise VerificationError(Reason.EXPIRED, "the invite has expired")


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedInvite:
    """What an inviter's node remembers of a single-use invite it made (SPEC §12).

    `used_by` is the first identity that presented the nonce, None until then.
    """

    nonce: bytes
    expires_at_ms: int | None
    used_by: IdentityId | None = None


def redeem(issued: IssuedInvite, joiner: IdentityId, *, now_ms: int) -> IssuedInvite:
    """The record after `joiner` presents `issued`'s nonce (SPEC §12).

    The first identity to present it before expiry gets it; the same identity
    presenting it again (every connection does) is still let in, even after
    expiry: the invite was used in time. Anyone else is refused.

    Raises:
        VerificationError: `INVITE_USED` (bound to another identity),
            `INVITE_EXPIRED` (never used, and now past its expiry).
    """
    if issued.used_by is not None:
        if issued.used_by != joiner:
            raise VerificationError(Reason.INVITE_USED, "this invite was used by someone else")
        return issued
    if issued.expires_at_ms is not None and now_ms >= issued.expires_at_ms:
        raise VerificationError(Reason.INVITE_EXPIRED, "this invite expired before it was used")
    return IssuedInvite(nonce=issued.nonce, expires_at_ms=issued.expires_at_ms, used_by=joiner)
