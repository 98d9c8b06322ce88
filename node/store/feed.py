"""Feeding the store's change feed into a trust engine.

`node.trust` is pure and never reads the store; this is the one place that
connects them. The engine applies supersession itself, so feeding it every
stored attestation in arrival order (heads or not) gives the same answers as
feeding it the current set.
"""

from __future__ import annotations

from node.store.interface import AttestationStore
from node.trust import TrustEngine

__all__ = ["follow_feed"]


def follow_feed(
    engine: TrustEngine, store: AttestationStore, *, cursor: int = 0, batch: int = 1000
) -> int:
    """Give `engine` everything stored after `cursor`; returns the new cursor."""
    while True:
        changes = store.changes_since(cursor, limit=batch)
        if not changes:
            return cursor
        engine.add(change.attestation for change in changes)
        cursor = changes[-1].seq
