"""Helpers for the damaged-store tests: a store full of attestations, then bad pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.store import Store
from protocol.attestation import AttestationBody, sign_attestation
from protocol.identity import IdentityKey
from protocol.statement import Trust

ISSUER = IdentityKey.from_seed(bytes([1]) * 32)
_PAGE = 4096


def fill_store(path: Path, count: int) -> None:
    """`count` vouches by `ISSUER`, checkpointed into the main file (not the WAL)."""
    attestations = [
        sign_attestation(
            AttestationBody(
                issuer=ISSUER.identity, issued_at_ms=1_700_000_000_000 + n,
                statement=Trust(subject=IdentityKey.from_seed(n.to_bytes(32, "big")).identity,
                                context="general", value=50),
            ),
            ISSUER,
        )
        for n in range(count)
    ]  # fmt: skip
    with Store.open(path) as store:
        store.apply(attestations, now_ms=1_700_000_100_000)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def damage(path: Path, *, start: float, length: float) -> None:
    """Overwrite whole pages from `start` for `length` (fractions of the file) with junk."""
    size = path.stat().st_size
    offset = int(size * start) // _PAGE * _PAGE
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xab" * max(_PAGE, int(size * length) // _PAGE * _PAGE))
