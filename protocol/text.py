"""Lowercase, unpadded base32 (RFC 4648 alphabet) for codes people copy: ids, invites.

One strict decoder: the text must be exactly what the encoder produces for the
bytes it decodes to (no upper case, padding, white space or non-zero spare
bits), so every value has one text form (SPEC §1.2, §12).
"""

from __future__ import annotations

import base64
import binascii

from protocol.errors import DecodeError, Reason

__all__ = ["decode_base32", "encode_base32"]

_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def encode_base32(data: bytes) -> str:
    """RFC 4648 base32 of `data`, lowercase, without `=` padding."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def decode_base32(text: str) -> bytes:
    """Decode the canonical text form of `encode_base32`.

    Raises:
        DecodeError: `BAD_TEXT` for characters outside a-z2-7, an impossible
            length, or spare bits that are not zero.
    """
    if not _ALPHABET.issuperset(text):
        raise DecodeError(Reason.BAD_TEXT, "base32 text is a-z and 2-7 only")
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except binascii.Error as exc:
        raise DecodeError(Reason.BAD_TEXT, f"not base32 ({len(text)} characters)") from exc
    if encode_base32(data) != text:
        raise DecodeError(Reason.BAD_TEXT, "non-canonical base32 (spare bits set)")
    return data
