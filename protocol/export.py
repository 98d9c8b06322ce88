"""The portable export file: a community's attestations as text, one envelope per line.

`trustnode export` writes it and `trustnode import` (or `POST /v1/import`)
reads it back, on another machine or into another app (SPEC §14):

    trustnode-export 1 <community id, 64 hex digits>\\n
    <signed envelope, lowercase hex>\\n
    ...

Text, so that it survives mail and copy-paste and diffs well; hex, so that
every byte of every envelope is kept exactly (its signature covers them). An
export file is outside input: `decode_export` checks the header, the line
grammar and the bounds, and raises `DecodeError` naming the line; it does not
verify signatures (the import pipeline does, envelope by envelope, so one bad
line costs that line, not the file).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from protocol.attestation import MAX_ENVELOPE_BYTES
from protocol.errors import DecodeError, Reason

__all__ = ["EXPORT_MAGIC", "MAX_EXPORT_ITEMS", "ExportFile", "decode_export", "encode_export"]

EXPORT_MAGIC = "trustnode-export"
EXPORT_VERSION = 1
MAX_EXPORT_ITEMS = 10_000_000
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class ExportFile:
    """The decoded file: the community it came from and its envelopes, in file order."""

    community_id: bytes
    envelopes: tuple[bytes, ...]


def encode_export(community_id: bytes, envelopes: Iterable[bytes]) -> bytes:
    """The file for these envelopes (written in one piece; see module doc)."""
    if len(community_id) != 32:
        raise ValueError("a community id has 32 bytes")
    lines = [f"{EXPORT_MAGIC} {EXPORT_VERSION} {community_id.hex()}"]
    lines += [envelope.hex() for envelope in envelopes]
    return ("\n".join(lines) + "\n").encode("ascii")


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and _HEX.issuperset(text)


def _decode_header(line: str) -> bytes:
    header = line.split(" ")
    if len(header) != 3 or header[0] != EXPORT_MAGIC:
        raise DecodeError(Reason.MALFORMED, f"line 1: expected '{EXPORT_MAGIC} 1 <community id>'")
    if header[1] != str(EXPORT_VERSION):
        raise DecodeError(Reason.UNKNOWN_VERSION, f"line 1: export version {header[1]!r:.20}")
    if len(header[2]) != 64 or not _is_hex(header[2]):
        raise DecodeError(Reason.MALFORMED, "line 1: the community id is 64 lowercase hex digits")
    return bytes.fromhex(header[2])


def decode_export(data: bytes, *, max_items: int = MAX_EXPORT_ITEMS) -> ExportFile:
    """Parse an export file.

    Raises:
        DecodeError: not ASCII, a bad header (`malformed`), an unknown version
            (`unknown_version`), a line that is not lowercase hex of at most
            MAX_ENVELOPE_BYTES bytes (`malformed` / `too_large`), or more than
            `max_items` envelopes (`too_large`). The message names the line.
    """
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError(Reason.MALFORMED, "an export file is ASCII text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    if not lines:
        raise DecodeError(Reason.MALFORMED, "line 1: empty file, expected the header")
    community_id = _decode_header(lines[0])
    if len(lines) - 1 > max_items:
        raise DecodeError(Reason.TOO_LARGE, f"more than {max_items} envelopes")
    envelopes = []
    for number, line in enumerate(lines[1:], start=2):
        if len(line) > 2 * MAX_ENVELOPE_BYTES:
            raise DecodeError(Reason.TOO_LARGE, f"line {number}: longer than an envelope can be")
        if not _is_hex(line):
            raise DecodeError(Reason.MALFORMED, f"line {number}: expected lowercase hex")
        envelopes.append(bytes.fromhex(line))
    return ExportFile(community_id=community_id, envelopes=tuple(envelopes))
