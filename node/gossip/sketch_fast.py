"""Sketch tables and prefix matches with numpy: `protocol.sketch`'s passes, vectorised.

`protocol.sketch` is the reference, in plain integers, and stays free of
numpy (STYLE §1); a sketch over a range of 10⁶ ids costs it a few seconds,
this builder about 0.1 s. The node and the benchmarks inject it into
`protocol.sync.Reconciler` (`sketch_builder=`); it must give the reference's
bytes and positions for every input (tests/node/test_sketch_fast.py checks
that with hypothesis), so a peer cannot tell which one built a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["NumpySketchBuilder"]

_HASHES = 4
_FIELD_BITS = 21  # a cell choice uses 21 bits of a hash (SPEC §13)

_U64 = npt.NDArray[np.uint64]


def _keys(prefixes: bytes) -> _U64:
    """8-byte id prefixes, back to back, as native 64-bit keys."""
    return np.frombuffer(prefixes, dtype=">u8").astype(np.uint64)


def _splitmix(x: _U64) -> _U64:
    # uint64 arithmetic wraps mod 2**64, as the reference's `& _MASK64` does.
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True, slots=True)
class NumpySketchBuilder:
    """A `protocol.sketch.SketchBuilder` over numpy arrays."""

    def build_table(self, prefixes: bytes, *, cells: int, salt: int) -> bytes:
        """The encoded table of `prefixes` with `cells` cells (a multiple of 4)."""
        assert cells % _HASHES == 0
        assert cells > 0
        keys = _keys(prefixes)
        q = cells // _HASHES
        hashed = _splitmix(keys ^ np.uint64(salt))
        again = _splitmix(hashed)
        checks = again >> np.uint64(32)
        field = np.uint64((1 << _FIELD_BITS) - 1)
        table_keys = np.zeros(cells, dtype=np.uint64)
        table_checks = np.zeros(cells, dtype=np.uint64)
        counts = np.zeros(cells, dtype=np.int64)
        for j in range(_HASHES):
            # Cells of quarter j: fields 0-2 of the hash, then field 0 of its hash.
            source = hashed if j < 3 else again
            part = (source >> np.uint64(_FIELD_BITS * (j % 3))) & field
            index = ((part * np.uint64(q)) >> np.uint64(_FIELD_BITS)).astype(np.intp) + j * q
            np.bitwise_xor.at(table_keys, index, keys)
            np.bitwise_xor.at(table_checks, index, checks)
            counts += np.bincount(index, minlength=cells)
        return (
            table_keys.astype(">u8").tobytes()
            + table_checks.astype(">u4").tobytes()
            + (counts & 0xFF).astype(np.uint8).tobytes()
        )

    def match_prefixes(self, prefixes: bytes, keys: frozenset[int]) -> list[int] | None:
        """Positions of the prefixes among `keys`; None if a key is at none."""
        mine = _keys(prefixes)
        wanted = np.fromiter(keys, dtype=np.uint64, count=len(keys))
        where = np.flatnonzero(np.isin(mine, wanted))
        if len(np.unique(mine[where])) != len(keys):
            return None
        return [int(k) for k in where]
