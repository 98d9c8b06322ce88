"""Invertible Bloom lookup tables of id prefixes for scattered differences (SPEC §13).

A range whose two sides differ by a few scattered ids costs, in range-based
reconciliation, fingerprints of many sub-ranges plus lists of the ids they hold
in common. A sketch costs instead about 1.3 cells of 13 bytes per *differing*
id, whatever the range's size: each side adds its ids (8-byte prefixes) into
`4q` cells, four cells per id, one in each quarter; the receiver subtracts its
own table built the same way, and the cells where one id is left alone ("pure")
give it back, with its side, and are peeled from the others until nothing is
left (Eppstein, Goodrich, Uyeda, Varghese, "What's the difference?", 2011).
Decoding fails, detectably, when the difference outgrows the table; the caller
then describes the range again, split or as prefix lists.

Cell positions and checksums come from SplitMix64 of the prefix mixed with a
per-range salt: a table index, not cryptography. Nothing here is trusted: a
pure-looking cell is checked (count ±1, checksum, and that it is one of its
key's four cells), a decoder stops after a bounded number of steps, and a
table that does not empty is a failure, never a partial answer.

This is the reference reading of SPEC §13's tables: plain integers, bytes and
the standard library only, so an implementer can follow it line by line. It
builds a table at about 3 µs an id; a node that sketches ranges of 10⁶ ids
injects a vectorised builder (`node/gossip/sketch_fast.py`) through the
`SketchBuilder` protocol, whose tables must be byte-identical to these (a
property test checks it). Peeling is plain Python over the cells, linear in them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from protocol.errors import FieldError, Reason

__all__ = [
    "CELL_BYTES",
    "MAX_CELLS",
    "Decoded",
    "PureSketchBuilder",
    "Sketch",
    "SketchBuilder",
    "build_table",
    "cells_for",
    "decode_difference",
    "match_prefixes",
    "prefix_keys",
    "range_salt",
]

CELL_BYTES = 13  # key xor (8) + checksum xor (4) + count mod 256 (1)
MAX_CELLS = 4096  # 53 248 bytes: a range fits one wire message
_HASHES = 4
_FIELD_BITS = 21  # a cell choice uses 21 bits of a hash
_FIELD = (1 << _FIELD_BITS) - 1
_MASK64 = (1 << 64) - 1
_SALT_DOMAIN = b"trustnode/sync-sketch/v1\x00"


def range_salt(lower: tuple[int, bytes], upper: tuple[int, bytes], cells: int) -> int:
    """The salt of a range's table: both sides know its bounds and size, so both derive it.

    A table sent again for the same range has another size, so other cells:
    what made the first fail (ids sharing all their cells) does not recur.
    """
    material = b"".join(ts.to_bytes(8, "big") + bytes([len(p)]) + p for ts, p in (lower, upper))
    material += cells.to_bytes(4, "big")
    return int.from_bytes(hashlib.blake2b(_SALT_DOMAIN + material, digest_size=8).digest(), "big")


def cells_for(difference: float) -> int:
    """Cells for a table that decodes `difference` ids with high probability.

    Peeling with four hashes succeeds with ~1.3 cells per id for large
    differences; small ones need a margin for bad luck, and the estimate
    itself (often a density times a count) is off by about its square root.
    Measured (tests/protocol/test_sketch.py): this fails about 1 % of the time
    when `difference` is exact.
    """
    wanted = 1.3 * difference + 1.5 * difference**0.5 + 10.0
    q = -(-int(wanted) // _HASHES) + 1
    return min(_HASHES * q, MAX_CELLS)


def prefix_keys(prefixes: bytes) -> tuple[int, ...]:
    """8-byte id prefixes, back to back, as big-endian 64-bit keys."""
    assert len(prefixes) % 8 == 0
    return struct.unpack(f">{len(prefixes) // 8}Q", prefixes)


def _splitmix_int(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _cells_of(hashed: int, q: int) -> tuple[int, int, int, int]:
    """The key's cell in each quarter: three from its hash, one from the hash's hash."""
    again = _splitmix_int(hashed)
    return (
        ((hashed & _FIELD) * q) >> _FIELD_BITS,
        q + ((((hashed >> _FIELD_BITS) & _FIELD) * q) >> _FIELD_BITS),
        2 * q + ((((hashed >> (2 * _FIELD_BITS)) & _FIELD) * q) >> _FIELD_BITS),
        3 * q + (((again & _FIELD) * q) >> _FIELD_BITS),
    )


@dataclass(frozen=True, slots=True)
class Sketch:
    """A table of `len(counts)` cells; `keys`, `checks` are xor sums, `counts` mod 256."""

    keys: tuple[int, ...]
    checks: tuple[int, ...]
    counts: bytes

    @classmethod
    def build(cls, keys: Iterable[int], cells: int, salt: int) -> Sketch:
        """The table of `keys` (64-bit id prefixes) with `cells` cells (a multiple of 4)."""
        assert cells % _HASHES == 0
        assert 0 < cells <= MAX_CELLS
        q = cells // _HASHES
        table_keys, table_checks, counts = [0] * cells, [0] * cells, [0] * cells
        for key in keys:
            hashed = _splitmix_int(key ^ salt)
            # The checksum is the high half of the hash's hash (SPEC §13).
            check = _splitmix_int(hashed) >> 32
            for cell in _cells_of(hashed, q):
                table_keys[cell] ^= key
                table_checks[cell] ^= check
                counts[cell] += 1
        return cls(tuple(table_keys), tuple(table_checks), bytes(c & 0xFF for c in counts))

    def encode(self) -> bytes:
        """Keys (8 bytes each, big-endian), then checksums (4), then counts (1)."""
        cells = len(self.counts)
        return (
            struct.pack(f">{cells}Q", *self.keys)
            + struct.pack(f">{cells}I", *self.checks)
            + self.counts
        )

    @classmethod
    def decode(cls, data: bytes) -> Sketch:
        """Parse a table; its length must be 13 bytes times a multiple of 4 cells.

        Raises:
            FieldError: `OUT_OF_RANGE` for any other length or over MAX_CELLS.
        """
        cells, rest = divmod(len(data), CELL_BYTES)
        if rest or cells == 0 or cells % _HASHES or cells > MAX_CELLS:
            raise FieldError(Reason.OUT_OF_RANGE, "a sketch has 4k cells of 13 bytes, at most 4096")
        keys = struct.unpack_from(f">{cells}Q", data, 0)
        checks = struct.unpack_from(f">{cells}I", data, 8 * cells)
        return cls(keys, checks, bytes(data[12 * cells :]))


def build_table(prefixes: bytes, *, cells: int, salt: int) -> bytes:
    """The encoded table of 8-byte id prefixes, back to back (SPEC §13)."""
    return Sketch.build(prefix_keys(prefixes), cells, salt).encode()


def match_prefixes(prefixes: bytes, keys: frozenset[int]) -> list[int] | None:
    """Positions of the 8-byte prefixes that are among `keys`, in order.

    None if some key is at no position: a decoded difference that names a
    prefix we do not hold is not a difference of our ids at all.
    """
    mine = prefix_keys(prefixes)
    positions = [i for i, key in enumerate(mine) if key in keys]
    if len({mine[i] for i in positions}) != len(keys):
        return None
    return positions


class SketchBuilder(Protocol):
    """The two passes over a range's prefixes that sketch forms need (SPEC §13).

    The pure builder below is the reference; a node may inject a faster one,
    which must give byte-identical tables and the same positions for every input.
    """

    def build_table(self, prefixes: bytes, *, cells: int, salt: int) -> bytes:
        """The encoded table of `prefixes` (8-byte id prefixes, back to back)."""
        ...

    def match_prefixes(self, prefixes: bytes, keys: frozenset[int]) -> list[int] | None:
        """Positions of the prefixes among `keys`; None if a key is at none."""
        ...


@dataclass(frozen=True, slots=True)
class PureSketchBuilder:
    """`build_table` and `match_prefixes` of this module: plain Python."""

    def build_table(self, prefixes: bytes, *, cells: int, salt: int) -> bytes:
        """See `protocol.sketch.build_table`."""
        return build_table(prefixes, cells=cells, salt=salt)

    def match_prefixes(self, prefixes: bytes, keys: frozenset[int]) -> list[int] | None:
        """See `protocol.sketch.match_prefixes`."""
        return match_prefixes(prefixes, keys)


@dataclass(frozen=True, slots=True)
class Decoded:
    """The difference a table gave back: keys only the sender holds, and only we hold."""

    theirs: frozenset[int]
    ours: frozenset[int]


def decode_difference(received: Sketch, own: Sketch, salt: int) -> Decoded | None:
    """Subtract our table from the peer's and peel; None if it does not empty.

    Work is bounded by the cells: at most two extractions per cell are tried,
    and an id given back twice makes the table a failure (a hostile table can
    name anything, but only among 2 x cells keys).
    """
    cells = len(received.counts)
    assert len(own.counts) == cells
    q = cells // _HASHES
    keys = [a ^ b for a, b in zip(received.keys, own.keys, strict=True)]
    checks = [a ^ b for a, b in zip(received.checks, own.checks, strict=True)]
    counts = [(a - b) & 0xFF for a, b in zip(received.counts, own.counts, strict=True)]
    theirs: set[int] = set()
    ours: set[int] = set()
    pending = [i for i in range(cells) if counts[i] in (1, 255)]
    steps = 0
    while pending:
        i = pending.pop()
        sign = counts[i]
        if sign not in (1, 255):
            continue
        key = keys[i]
        hashed = _splitmix_int(key ^ salt)
        if checks[i] != _splitmix_int(hashed) >> 32:
            continue
        where = _cells_of(hashed, q)
        if i not in where:
            continue
        steps += 1
        side = theirs if sign == 1 else ours
        if steps > 2 * cells or key in theirs or key in ours:
            return None
        side.add(key)
        check = checks[i]
        for c in where:
            keys[c] ^= key
            checks[c] ^= check
            counts[c] = (counts[c] - sign) & 0xFF
            if counts[c] in (1, 255):
                pending.append(c)
    if any(keys) or any(checks) or any(counts):
        return None
    return Decoded(frozenset(theirs), frozenset(ours))
