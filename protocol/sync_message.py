"""The messages of range-based set reconciliation: modes, ranges, their codec (SPEC §13).

A message is a run of consecutive ranges over `(issued_at_ms, id)` that
covers the whole universe, each with a mode saying how its side describes
it: skipped, fingerprinted (16 or 8 bytes, or 8 bytes and a count), listed
by ids or 8-byte prefixes, or sketched (`protocol.sketch`). This module owns
their exact bytes and refuses anything else: every decoded message is
re-encoded and compared, every list and table is bounded before it is used.
It knows nothing of how a reconciler chooses a mode (`protocol.sync`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.attestation import ID_PREFIX_BYTES, MAX_TIME_MS, split_id_prefixes
from protocol.codec import Value, pack, unpack
from protocol.errors import DecodeError, FieldError, Reason
from protocol.sketch import Sketch

__all__ = [
    "FINGERPRINT_BYTES",
    "ID_BYTES",
    "INFINITY",
    "MAX_COUNT",
    "MAX_IDS_PER_RANGE",
    "MAX_RANGES",
    "MAX_SKETCHES",
    "MAX_WANTED",
    "SHORT_FINGERPRINT_BYTES",
    "SYNC_VERSION",
    "ZERO",
    "Bound",
    "Item",
    "Mode",
    "Range",
    "SyncMessage",
    "decode_sync_message",
    "encode_sync_message",
    "fingerprint",
    "fingerprint_of",
]

SYNC_VERSION = 1
ID_BYTES = 32
FINGERPRINT_BYTES = 16
SHORT_FINGERPRINT_BYTES = 8  # mode 6: a fingerprint's first 8 bytes
MAX_RANGES = 8192
MAX_IDS_PER_RANGE = 256
MAX_WANTED = 4096  # prefixes in one wanted range: a decoded sketch may name that many
MAX_COUNT = 2**32 - 1
# Sketches in one message: each costs its receiver a table over its range, so a
# peer may not send thousands of tiny ones (ours: a few dozen per message).
MAX_SKETCHES = 512
_FP_DOMAIN = b"trustnode/sync-fingerprint/v1\x00"
_MODULUS = 2**256

Bound = tuple[int, bytes]
Item = tuple[int, bytes]
INFINITY: Bound = (MAX_TIME_MS + 1, b"")
ZERO: Bound = (0, b"")  # the lower bound of the first range


class Mode:
    """Range modes on the wire (SPEC §13.2)."""

    SKIP = 0
    FINGERPRINT = 1
    ID_LIST = 2
    MISSING = 3
    PREFIX_LIST = 4
    WANTED = 5
    FINGERPRINT8 = 6
    COUNTED = 7
    SKETCH = 8


@dataclass(frozen=True, slots=True)
class Range:
    """One range of a message: everything from the previous upper bound to `upper`."""

    upper: Bound
    mode: int
    fingerprint: bytes = b""
    ids: tuple[bytes, ...] = ()
    prefixes: bytes = b""  # modes 4 and 5: 8-byte id prefixes, back to back
    count: int = 0  # modes 7 and 8: how many items the sender holds in the range
    sketch: bytes = b""  # mode 8: the table (protocol.sketch)

    def split_prefixes(self) -> list[bytes]:
        """`prefixes` as a list of 8-byte prefixes."""
        return split_id_prefixes(self.prefixes)


@dataclass(frozen=True, slots=True)
class SyncMessage:
    """Consecutive ranges covering the whole universe, the last ending at INFINITY."""

    ranges: tuple[Range, ...]


def fingerprint(ids: Sequence[bytes]) -> bytes:
    """The fingerprint of a set of ids: H(domain || sum mod 2**256 || count)[:16]."""
    return fingerprint_of(sum(int.from_bytes(i, "little") for i in ids), len(ids))


def fingerprint_of(total: int, count: int) -> bytes:
    """The fingerprint of `count` ids whose little-endian values sum to `total`.

    A reconciler keeps prefix sums of its ids, so a range's fingerprint costs
    one subtraction; the sum is taken mod 2**256 here (SPEC §13).
    """
    material = _FP_DOMAIN + (total % _MODULUS).to_bytes(32, "little") + count.to_bytes(4, "big")
    return hashlib.blake2b(material, digest_size=32).digest()[:FINGERPRINT_BYTES]


def _range_value(item: Range) -> Value:
    payload: Value
    if item.mode in (Mode.FINGERPRINT, Mode.FINGERPRINT8):
        payload = item.fingerprint
    elif item.mode in (Mode.ID_LIST, Mode.MISSING):
        payload = item.ids
    elif item.mode in (Mode.PREFIX_LIST, Mode.WANTED):
        payload = item.prefixes
    elif item.mode == Mode.COUNTED:
        payload = (item.fingerprint, item.count)
    elif item.mode == Mode.SKETCH:
        payload = (item.count, item.sketch)
    else:
        payload = None
    return (item.upper[0], item.upper[1], item.mode, payload)


def encode_sync_message(message: SyncMessage) -> bytes:
    """Canonical msgpack `[1, [[ts, prefix, mode, payload], ...]]`."""
    return pack((SYNC_VERSION, tuple(_range_value(r) for r in message.ranges)))


def decode_sync_message(data: bytes) -> SyncMessage:
    """Decode and validate a reconciliation message.

    Raises:
        DecodeError: `MALFORMED`, `TRAILING_BYTES`, `UNKNOWN_VERSION`,
            `BAD_FIELD`, `OUT_OF_RANGE` (bounds not increasing, not ending at
            infinity, ids outside their range, too many ranges or ids) or
            `NON_CANONICAL`.
    """
    obj = unpack(data)
    if type(obj) is not tuple or len(obj) != 2 or type(obj[0]) is not int:
        raise DecodeError(Reason.MALFORMED, "a sync message is [version, ranges]")
    if obj[0] != SYNC_VERSION:
        raise DecodeError(Reason.UNKNOWN_VERSION, f"sync version {obj[0]}")
    if type(obj[1]) is not tuple or not 1 <= len(obj[1]) <= MAX_RANGES:
        raise DecodeError(Reason.OUT_OF_RANGE, "1..8192 ranges")
    try:
        ranges = _decode_ranges(obj[1])
    except FieldError as exc:
        raise DecodeError(exc.reason, str(exc)) from exc
    message = SyncMessage(ranges)
    if encode_sync_message(message) != data:
        raise DecodeError(Reason.NON_CANONICAL, "sync message encoding")
    return message


def _fail(reason: Reason, message: str) -> FieldError:
    return FieldError(reason, message)


def _decode_ranges(raw: tuple[object, ...]) -> tuple[Range, ...]:
    ranges, lower = [], ZERO
    for entry in raw:
        if type(entry) is not tuple or len(entry) != 4:
            raise _fail(Reason.BAD_FIELD, "a range is [ts, prefix, mode, payload]")
        ts, prefix, mode, payload = entry
        if type(ts) is not int or type(prefix) is not bytes or type(mode) is not int:
            raise _fail(Reason.BAD_FIELD, "range bound or mode")
        upper = (ts, prefix)
        if not (0 <= ts <= INFINITY[0] and len(prefix) <= ID_BYTES and upper > lower):
            raise _fail(Reason.OUT_OF_RANGE, "bounds must increase within the universe")
        ranges.append(_decode_payload(upper, lower, mode, payload))
        lower = upper
    if lower != INFINITY:
        raise _fail(Reason.OUT_OF_RANGE, "the last range must end at infinity")
    if sum(r.mode == Mode.SKETCH for r in ranges) > MAX_SKETCHES:
        raise _fail(Reason.OUT_OF_RANGE, f"at most {MAX_SKETCHES} sketches per message")
    return tuple(ranges)


def _decode_ids(payload: object) -> tuple[bytes, ...]:
    if type(payload) is not tuple or len(payload) > MAX_IDS_PER_RANGE:
        raise _fail(Reason.OUT_OF_RANGE, "at most 256 ids per range")
    for item in payload:
        if type(item) is not bytes or len(item) != ID_BYTES:
            raise _fail(Reason.BAD_FIELD, "an id has 32 bytes")
    return payload


_FINGERPRINT_SIZES = {
    Mode.FINGERPRINT: FINGERPRINT_BYTES,
    Mode.FINGERPRINT8: SHORT_FINGERPRINT_BYTES,
}


def _decode_payload(upper: Bound, lower: Bound, mode: int, payload: object) -> Range:
    if mode == Mode.SKIP and payload is None:
        return Range(upper, mode)
    if mode in _FINGERPRINT_SIZES:
        if type(payload) is not bytes or len(payload) != _FINGERPRINT_SIZES[mode]:
            raise _fail(
                Reason.BAD_FIELD, f"a mode {mode} fingerprint has {_FINGERPRINT_SIZES[mode]} bytes"
            )
        return Range(upper, mode, fingerprint=payload)
    if mode in (Mode.ID_LIST, Mode.MISSING):
        return Range(upper, mode, ids=_decode_ids(payload))
    if mode in (Mode.PREFIX_LIST, Mode.WANTED):
        if type(payload) is not bytes:
            raise _fail(Reason.BAD_FIELD, "a prefix list is one bin")
        limit = MAX_IDS_PER_RANGE if mode == Mode.PREFIX_LIST else MAX_WANTED
        if len(payload) % ID_PREFIX_BYTES or len(payload) > limit * ID_PREFIX_BYTES:
            raise _fail(Reason.OUT_OF_RANGE, f"at most {limit} prefixes of 8 bytes per range")
        return Range(upper, mode, prefixes=payload)
    if mode in (Mode.COUNTED, Mode.SKETCH):
        return _decode_counted(upper, mode, payload)
    raise _fail(Reason.BAD_FIELD, f"range mode {mode}")


def _decode_counted(upper: Bound, mode: int, payload: object) -> Range:
    """Modes 7 `[fingerprint8, count]` and 8 `[count, table]` (SPEC §13, sketch forms)."""
    if type(payload) is not tuple or len(payload) != 2:
        raise _fail(Reason.BAD_FIELD, f"a mode {mode} payload is a pair")
    first, second = payload
    fp, count, table = (first, second, b"") if mode == Mode.COUNTED else (b"", first, second)
    if mode == Mode.COUNTED and (type(fp) is not bytes or len(fp) != SHORT_FINGERPRINT_BYTES):
        raise _fail(Reason.BAD_FIELD, "a counted fingerprint has 8 bytes")
    if type(count) is not int or type(table) is not bytes:
        raise _fail(Reason.BAD_FIELD, "a count is an int, a sketch a bin")
    if not 0 <= count <= MAX_COUNT:
        raise _fail(Reason.OUT_OF_RANGE, "a count is below 2**32")
    if mode == Mode.SKETCH:
        Sketch.decode(table)  # length checks (FieldError)
    return Range(upper, mode, fingerprint=fp, count=count, sketch=table)
