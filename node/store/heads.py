"""Settling slot heads for a batch in memory, before it is written (SPEC §5).

Each row is compared with the running head of its slot (loaded from the store
for the slots the batch touches). Processing rows one by one against the
running head gives the same result as taking the maximum of the slot's whole
set, so the outcome never depends on order or batching.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass

from node.store.records import Outcome
from protocol.attestation import Attestation
from protocol.statement import Rate, Trust

__all__ = ["BatchPlan", "Row", "plan_batch", "settle", "settle_heads"]

_VALUED = (Trust, Rate)


class Row:
    """An attestation on its way into the table; `is_head` may change within a batch."""

    __slots__ = ("attestation", "is_head", "key", "slot", "slot_id")

    def __init__(self, attestation: Attestation) -> None:
        self.attestation = attestation
        self.slot = attestation.slot
        self.slot_id: bytes = self.slot.id
        # The body once, not through the attestation's properties: this runs
        # for every row of every batch (as `values` does).
        self.key = (attestation.envelope.body.issued_at_ms, attestation.id)
        self.is_head = False

    def values(self, refs: dict[bytes, int], now_ms: int) -> tuple[object, ...]:
        att = self.attestation
        envelope = att.envelope
        body = envelope.body
        statement = body.statement
        slot = self.slot
        subject = statement.subject
        subject_ref, thing = (None, subject) if isinstance(subject, str) else (refs[subject], None)
        value = statement.value if isinstance(statement, _VALUED) else None
        head = self.is_head
        return (
            att.id, self.slot_id, envelope.data, refs[body.issuer], statement.kind.value,
            slot.kind.value, subject_ref, thing, slot.scope, value, self.key[0],
            body.expires_at_ms, now_ms, 1 if head else 0, None if head else now_ms,
        )  # fmt: skip


def settle_heads(rows: list[Row], heads: dict[bytes, tuple[int, bytes]]) -> list[bytes]:
    """Decide each row's head state in memory, updating `heads`.

    Returns the ids of previously stored heads that this batch supersedes.
    Processing rows one by one against the running head is the same as taking
    the maximum of the slot's whole set, so batching and order do not matter.
    """
    pending: dict[bytes, Row] = {}
    demoted: list[bytes] = []
    for row in rows:
        current = heads.get(row.slot_id)
        if current is not None and row.key < current:
            continue
        previous = pending.get(row.slot_id)
        if previous is not None:
            previous.is_head = False
        elif current is not None:
            demoted.append(current[1])
        row.is_head = True
        pending[row.slot_id] = row
        heads[row.slot_id] = row.key
    return demoted


def settle(outcome: Outcome, rows: Iterator[Row]) -> Outcome:
    if outcome is Outcome.DUPLICATE:
        return outcome
    row = next(rows)
    return Outcome.NEW if row.is_head else Outcome.SUPERSEDED


Heads = dict[bytes, tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """What applying a batch does, decided in memory before anything is written."""

    rows: list[Row]  # to insert, each with its final head state
    heads: Heads  # the slots' heads after the batch (for the slots it touches)
    demoted: list[bytes]  # ids of stored heads this batch supersedes
    provisional: list[Outcome]  # DUPLICATE, or NEW until `outcomes` settles it

    def outcomes(self) -> list[Outcome]:
        """One outcome per attestation of the batch: NEW, SUPERSEDED or DUPLICATE."""
        settled = iter(self.rows)
        return [settle(outcome, settled) for outcome in self.provisional]


def plan_batch(
    attestations: Sequence[Attestation],
    *,
    stored: Container[bytes],
    load_heads: Callable[[set[bytes]], Heads],
) -> BatchPlan:
    """Settle a batch against what is `stored` and the heads `load_heads` returns.

    The one implementation of the slot rules that both stores write from.
    Duplicates within the batch are caught here; a row equal to a remembered
    head is that head, re-sent (maybe after pruning).
    """
    known: set[bytes] = set()
    candidates: list[Row | None] = []
    for attestation in attestations:
        fresh = attestation.id not in known and attestation.id not in stored
        known.add(attestation.id)
        candidates.append(Row(attestation) if fresh else None)
    heads = load_heads({row.slot_id for row in candidates if row is not None})
    rows: list[Row] = []
    provisional: list[Outcome] = []
    for row in candidates:
        if row is None or heads.get(row.slot_id) == row.key:
            provisional.append(Outcome.DUPLICATE)
        else:
            rows.append(row)
            provisional.append(Outcome.NEW)
    demoted = settle_heads(rows, heads)
    return BatchPlan(rows=rows, heads=heads, demoted=demoted, provisional=provisional)
