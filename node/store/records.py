"""Plain results of the store: ingest outcomes, reports, edges, changes, statistics."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field

from protocol.attestation import Attestation, AttestationId
from protocol.errors import Reason
from protocol.identity import IdentityId

__all__ = [
    "Change",
    "IngestReport",
    "ItemReport",
    "Outcome",
    "StoreStatistics",
    "TrustEdge",
]


class Outcome(enum.Enum):
    """What ingesting one envelope did (its value is the stable API code)."""

    NEW = "new"  # stored, and the head of its slot when its batch committed
    SUPERSEDED = "superseded"  # stored, but older than its slot's head at that commit
    DUPLICATE = "duplicate"  # already held (or already superseded by what we hold)
    REJECTED = "rejected"  # refused: see the item's reason; nothing was stored


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemReport:
    """The outcome for the envelope at `index` of the ingested sequence."""

    index: int
    outcome: Outcome
    id: AttestationId | None = None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestReport:
    """Per-item outcomes of one `ingest` call.

    A report exists only after its writes were committed: everything it calls
    NEW or SUPERSEDED is durable (`acknowledged` is then true by construction).
    """

    items: tuple[ItemReport, ...]
    acknowledged: bool = True
    counts: Counter[Outcome] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", Counter(item.outcome for item in self.items))

    @property
    def stored_ids(self) -> list[AttestationId]:
        """Ids of the attestations this call added to the store."""
        stored = (Outcome.NEW, Outcome.SUPERSEDED)
        return [i.id for i in self.items if i.outcome in stored and i.id is not None]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustEdge:
    """A current trust attestation as a graph edge (value in -100..100)."""

    issuer: IdentityId
    subject: IdentityId
    value: int
    id: AttestationId


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One stored attestation in arrival order, for the change feed.

    `is_head` is its state *now* (it may have been superseded since it arrived).
    """

    seq: int
    attestation: Attestation
    is_head: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreStatistics:
    """Sizes of the store, for `status` and benchmarks."""

    attestations: int
    heads: int
    slots: int
    file_bytes: int
