"""Which attestation of a slot counts: newest wins, revocations are tombstones (SPEC §5).

These pure functions are the reference semantics that the store implements
with indexes and that replication must never contradict. They depend only on
the attestations themselves (never on arrival order), so every node that holds
the same set reaches the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.attestation import Attestation
from protocol.errors import LocalProtocolError
from protocol.statement import Kind

__all__ = [
    "is_current",
    "is_expired",
    "order_key",
    "resolve_slot",
    "slot_head",
    "supersedes",
]


def order_key(attestation: Attestation) -> tuple[int, bytes]:
    """The total order within a slot: `(issued_at_ms, id)`, ids compared as bytes."""
    return (attestation.issued_at_ms, attestation.id)


def supersedes(newer: Attestation, older: Attestation) -> bool:
    """Whether `newer` replaces `older`: same slot and later in `order_key` order."""
    return newer.slot == older.slot and order_key(newer) > order_key(older)


def slot_head(attestations: Iterable[Attestation]) -> Attestation:
    """The newest attestation of one slot, a revocation included.

    Raises:
        LocalProtocolError: `attestations` is empty or spans several slots.
    """
    head: Attestation | None = None
    for attestation in attestations:
        if head is not None and attestation.slot != head.slot:
            raise LocalProtocolError("attestations of different slots")
        if head is None or order_key(attestation) > order_key(head):
            head = attestation
    if head is None:
        raise LocalProtocolError("a slot head needs at least one attestation")
    return head


def is_expired(attestation: Attestation, *, now_ms: int) -> bool:
    """Whether the attestation's expiry time has been reached at `now_ms`."""
    expires_at_ms = attestation.expires_at_ms
    return expires_at_ms is not None and now_ms >= expires_at_ms


def is_current(attestation: Attestation, *, now_ms: int) -> bool:
    """Whether a slot head counts: not a revocation and not expired."""
    return attestation.kind is not Kind.REVOKE and not is_expired(attestation, now_ms=now_ms)


def resolve_slot(attestations: Iterable[Attestation], *, now_ms: int) -> Attestation | None:
    """The attestation that counts in a slot at `now_ms`, or None.

    The newest attestation decides. If it is a revocation or has expired, the
    slot is empty: an older attestation never comes back (SPEC §5.2).

    Raises:
        LocalProtocolError: `attestations` is empty or spans several slots.
    """
    head = slot_head(attestations)
    return head if is_current(head, now_ms=now_ms) else None
