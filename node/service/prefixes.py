"""Identities by unique prefix, like git's abbreviated commits: `tn_qe4xod` for `tn_qe4xod…`.

People see identities shortened (`tn_` and 8 characters); they may type them
back that way. A prefix is `tn_` and at least `MIN_PREFIX_CHARS` characters
of the text form (SPEC §1.2), optionally ending in the `…` that shortened
labels carry. It is resolved against the identities this node's store knows
(issuers and subjects it holds attestations by or about): one match is that
identity; none or several is a `RequestError` that says so and names the
candidates. A full 58-character text is decoded strictly, known or not (so a
vouch for someone new still works, with the full identity). Text that does not
start with `tn_` is a petname (`choose_by_petname`).

The range search is exact: a prefix of k base32 characters fixes the first
5k bits of the key (k ≤ 51: the key is 256 bits), so the candidates are the
keys in one byte range, found by the store's unique index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from node.errors import RequestError
from node.names.skeleton import skeleton
from protocol.errors import DecodeError, Reason
from protocol.identity import IdentityId, decode_identity_text, encode_identity_text

__all__ = [
    "MAX_CANDIDATES",
    "MIN_PREFIX_CHARS",
    "IdentityPrefix",
    "choose_by_petname",
    "choose_identity",
    "is_thing_text",
    "key_range",
    "parse_identity_or_prefix",
]

MIN_PREFIX_CHARS = 6  # 30 bits: unique among thousands of members, short enough to type
MAX_CANDIDATES = 10
_PREFIX = "tn_"
_FULL_CHARS = 58
_KEY_CHARS = 51  # 255 of the key's 256 bits; later characters also carry checksum bits
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_WORDS = (
    f"an identity is tn_ and 58 letters and digits 2 to 7 (or at least {MIN_PREFIX_CHARS} "
    "of them, to name one this node knows)"
)


def key_range(body: str) -> tuple[bytes, bytes | None]:
    """The 32-byte keys whose text starts with `body` (base32): [low, high), high None = end.

    `body` must be at most 51 characters of the alphabet (checked by the caller).
    """
    bits = 0
    for character in body:
        bits = (bits << 5) | _ALPHABET.index(character)
    spare = 256 - 5 * len(body)
    low = bits << spare
    high = (bits + 1) << spare
    return low.to_bytes(32, "big"), None if high >> 256 else high.to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class IdentityPrefix:
    """A prefix to resolve: the text as given (without `…`) and its key range."""

    text: str
    low: bytes
    high: bytes | None


def _is_prefix_text(body: str) -> bool:
    return MIN_PREFIX_CHARS <= len(body) < _FULL_CHARS and all(c in _ALPHABET for c in body)


def parse_identity_or_prefix(text: str) -> IdentityId | IdentityPrefix:
    """A full identity (decoded strictly), or the prefix to look up.

    Raises:
        RequestError: `bad_identity`, in words (never a pattern).
    """
    given = text.removesuffix("…")
    body = given.removeprefix(_PREFIX)
    refused = RequestError("bad_identity", f"{text!r:.80} is not an identity: {_WORDS}")
    if not given.startswith(_PREFIX) or len(body) >= _FULL_CHARS:
        try:
            return decode_identity_text(text)
        except DecodeError as exc:
            if exc.reason is Reason.BAD_CHECKSUM:
                message = f"{text:.80} is not an identity: its checksum does not match (a typo?)"
                raise RequestError("bad_identity", message) from None
            raise refused from None
    if not _is_prefix_text(body):
        raise refused
    low, high = key_range(body[:_KEY_CHARS])
    return IdentityPrefix(text=given, low=low, high=high)


def choose_identity(prefix: IdentityPrefix, keys: Sequence[bytes]) -> IdentityId:
    """The one of `keys` (the known ones in the prefix's range) that `prefix` names.

    Raises:
        RequestError: `bad_identity` (none does), `ambiguous_identity` (several
            do; the message lists up to `MAX_CANDIDATES` of them).
    """
    found = [
        IdentityId(k) for k in keys if encode_identity_text(IdentityId(k)).startswith(prefix.text)
    ]
    if not found:
        raise RequestError(
            "bad_identity", f"no identity this node knows starts with {prefix.text}: give all of it"
        )
    if len(found) > 1:
        shown = ", ".join(encode_identity_text(k) for k in found[:MAX_CANDIDATES])
        more = " and more" if len(found) > MAX_CANDIDATES else ""
        raise RequestError(
            "ambiguous_identity", f"{prefix.text} could be any of: {shown}{more}; give more of it"
        )
    return found[0]


# A thing's URI as SPEC §3.2 allows it (protocol.statement checks the same when signing).
_THING = re.compile(r"[a-z][a-z0-9+.-]*:[\x21-\x7e]{1,511}")


def is_thing_text(text: str) -> bool:
    """Whether `text` is a thing's URI (a lowercase scheme, a colon, visible ASCII)."""
    return len(text) <= 512 and _THING.fullmatch(text) is not None


def choose_by_petname(text: str, petnames: Mapping[IdentityId, str]) -> IdentityId:
    """The identity whose petname (mine, node.names) is `text`: exactly, else read alike.

    An exact petname names one identity (petnames are unique per node). Typed
    loosely (`grace` for `Grace (rue des Lilas)`), the text may match the start
    of several petnames read alike (node.names.skeleton): one is that identity,
    several are an error that lists them.

    Raises:
        RequestError: `bad_identity` (no petname fits), `ambiguous_identity`.
    """
    for identity, name in petnames.items():
        if name == text:
            return identity
    wanted = skeleton(text, fold_first=True)
    found = sorted(
        (name, identity)
        for identity, name in petnames.items()
        if wanted and skeleton(name, fold_first=True).startswith(wanted)
    )
    if not found:
        raise RequestError(
            "bad_identity",
            f"{text!r:.80} is neither a petname you gave nor an identity: {_WORDS}",
        )
    if len(found) > 1:
        shown = ", ".join(
            f"{name!r} ({encode_identity_text(i)})" for name, i in found[:MAX_CANDIDATES]
        )
        raise RequestError("ambiguous_identity", f"{text!r:.80} could be any of: {shown}")
    return found[0][1]
