"""Builds `protocol/vectors/sync-sketch-v1.json`: sketch tables and their differences (SPEC §13).

Run `python -m tests.vectors.sync_sketch_vectors` to rewrite the file;
`tests/protocol/test_sketch_vectors.py` fails if the file and this builder
disagree, and rebuilds every table with a plain-integer reading of the SPEC's
text (not the module that made it), so another implementation can match
salts, tables and peeled differences byte for byte.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

from protocol.sketch import Sketch, decode_difference, range_salt
from tests.vectors.vector_file import write_vectors

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "sync-sketch-v1.json"
Json = dict[str, Any]
Bound = tuple[int, bytes]


def ident(n: int) -> bytes:
    """A fixed 32-byte id."""
    return hashlib.blake2b(b"sketch-vector" + n.to_bytes(4, "big"), digest_size=32).digest()


def _keys(ids: list[bytes]) -> list[int]:
    return [int.from_bytes(i[:8], "big") for i in ids]


def _bound(bound: Bound) -> list[object]:
    return [bound[0], bound[1].hex()]


# (name, lower, upper, cells, ids the sender holds, ids the receiver holds)
CASES: list[tuple[str, Bound, Bound, int, range, range]] = [
    ("empty", (0, b""), (2**53, b""), 4, range(0), range(0)),
    ("one id", (0, b""), (2**53, b""), 8, range(1), range(0)),
    ("receiver only", (5, b"\x01"), (9, b""), 12, range(3), range(5)),
    (
        "both sides",
        (1_700_000_000_000, b""),
        (1_700_000_000_001, b"\x80"),
        40,
        range(40),
        range(6, 48),
    ),
    ("larger table", (0, b""), (2**53, b""), 96, range(100), range(15, 120)),
]


def build_vectors() -> Json:
    """The whole vector file, deterministically."""
    cases = []
    for name, lower, upper, cells, sender, receiver in CASES:
        salt = range_salt(lower, upper, cells)
        sent = [ident(n) for n in sender]
        held = [ident(n) for n in receiver]
        table = Sketch.build(_keys(sent), cells, salt)
        decoded = decode_difference(table, Sketch.build(_keys(held), cells, salt), salt)
        assert decoded is not None
        cases.append(
            {
                "name": name,
                "lower": _bound(lower),
                "upper": _bound(upper),
                "cells": cells,
                "salt_hex": salt.to_bytes(8, "big").hex(),
                "sender_ids_hex": [i.hex() for i in sent],
                "receiver_ids_hex": [i.hex() for i in held],
                "sender_table_hex": table.encode().hex(),
                # What the receiver peels: prefixes only the sender holds, only it holds.
                "sender_only_hex": sorted(k.to_bytes(8, "big").hex() for k in decoded.theirs),
                "receiver_only_hex": sorted(k.to_bytes(8, "big").hex() for k in decoded.ours),
            }
        )
    return {
        "format": "trustnode-sync-sketch-vectors",
        "format_version": 1,
        "spec": "protocol/SPEC.md §13 (sketch forms)",
        "cases": cases,
    }


def main() -> int:
    """Rewrite the vector file; print its path and digest."""
    return write_vectors(VECTORS_PATH, build_vectors())


if __name__ == "__main__":
    sys.exit(main())
