"""The sketch vectors against the file's builder and a plain reading of SPEC §13."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.vectors.sync_sketch_vectors import VECTORS_PATH, build_vectors
from tests.vectors.vector_file import render

VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
M64 = 2**64 - 1


def test_file_is_what_the_builder_makes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == render(build_vectors())


def _splitmix(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _salt(lower: list[Any], upper: list[Any], cells: int) -> int:
    material = b"trustnode/sync-sketch/v1\x00"
    for ts, prefix_hex in (lower, upper):
        prefix = bytes.fromhex(prefix_hex)
        material += ts.to_bytes(8, "big") + bytes([len(prefix)]) + prefix
    material += cells.to_bytes(4, "big")
    return int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "big")


def _table(ids_hex: list[str], cells: int, salt: int) -> bytes:
    """SPEC §13's table, one integer at a time."""
    q, field = cells // 4, (1 << 21) - 1
    keys, checks, counts = [0] * cells, [0] * cells, [0] * cells
    for id_hex in ids_hex:
        key = int.from_bytes(bytes.fromhex(id_hex)[:8], "big")
        h = _splitmix(key ^ salt)
        g = _splitmix(h)
        fields = [h & field, (h >> 21) & field, (h >> 42) & field, g & field]
        for j, f in enumerate(fields):
            cell = j * q + ((f * q) >> 21)
            keys[cell] ^= key
            checks[cell] ^= g >> 32
            counts[cell] = (counts[cell] + 1) % 256
    return (
        b"".join(k.to_bytes(8, "big") for k in keys)
        + b"".join(c.to_bytes(4, "big") for c in checks)
        + bytes(counts)
    )


def test_tables_follow_the_spec_text() -> None:
    for case in VECTORS["cases"]:
        salt = _salt(case["lower"], case["upper"], case["cells"])
        assert salt.to_bytes(8, "big").hex() == case["salt_hex"], case["name"]
        table = _table(case["sender_ids_hex"], case["cells"], salt)
        assert table.hex() == case["sender_table_hex"], case["name"]


def test_differences_are_the_sets_difference() -> None:
    for case in VECTORS["cases"]:
        sender = {i[:16] for i in case["sender_ids_hex"]}
        receiver = {i[:16] for i in case["receiver_ids_hex"]}
        assert case["sender_only_hex"] == sorted(sender - receiver)
        assert case["receiver_only_hex"] == sorted(receiver - sender)
