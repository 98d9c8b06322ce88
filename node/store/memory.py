"""The store's semantics in plain dictionaries, for simulations of 10 000+ nodes.

A simulated member does not need durability, and an SQLite connection per
member costs memory and time that limit how many members one process can run.
`MemoryStore` keeps the same rules as `Store` — it settles slot heads with the
very same code (`node.store.heads`), keeps slot high-water marks, and answers
the same queries — and a differential property test holds the two to the same
outcomes and answers for any set of attestations in any order and batching.

It is never used by the daemon: nothing here survives the process, and there is
no pruning (a simulation is short).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from node.store.heads import Row, plan_batch
from node.store.records import Change, Outcome, StoreStatistics, TrustEdge
from protocol.attestation import Attestation, AttestationId
from protocol.devices import is_identity_statement
from protocol.identity import IdentityId
from protocol.statement import Kind, SlotId, Subject, Trust

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Held:
    attestation: Attestation
    seq: int
    is_head: bool

    def current(self, now_ms: int) -> bool:
        expires = self.attestation.expires_at_ms
        return (
            self.is_head
            and self.attestation.kind is not Kind.REVOKE
            and (expires is None or expires > now_ms)
        )


class MemoryStore:
    """Attestations of one simulated member, in memory (the `Store` interface)."""

    def __init__(self) -> None:
        self._rows: dict[bytes, _Held] = {}
        self._slots: dict[bytes, tuple[int, bytes]] = {}  # high-water marks, as in `slots`
        self._order: list[tuple[int, bytes]] = []  # (issued_at_ms, id), sorted
        self._feed: list[bytes] = []  # ids in arrival order; seq = position + 1
        self._by_issuer: dict[bytes, list[bytes]] = {}
        self._about: dict[bytes | str, list[bytes]] = {}

    # -- the write path -------------------------------------------------

    def apply(self, attestations: Sequence[Attestation], *, now_ms: int) -> list[Outcome]:
        """Store verified attestations; one outcome each, as `Store.apply`."""
        del now_ms  # arrival times are not kept here
        slots = self._slots
        plan = plan_batch(
            attestations,
            stored=self._rows,
            load_heads=lambda touched: {s: slots[s] for s in touched if s in slots},
        )
        for head_id in plan.demoted:
            if (held := self._rows.get(head_id)) is not None:
                held.is_head = False
        for row in plan.rows:
            self._add(row)
            if row.is_head:
                slots[row.slot_id] = plan.heads[row.slot_id]
        return plan.outcomes()

    def _add(self, row: Row) -> None:
        attestation = row.attestation
        self._feed.append(attestation.id)
        self._rows[attestation.id] = _Held(attestation, len(self._feed), row.is_head)
        bisect.insort(self._order, row.key)
        self._by_issuer.setdefault(attestation.issuer, []).append(attestation.id)
        self._about.setdefault(attestation.statement.subject, []).append(attestation.id)

    # -- queries ---------------------------------------------------------

    def existing_ids(self, ids: Sequence[bytes]) -> set[bytes]:
        """Which of `ids` are stored."""
        rows = self._rows
        return {i for i in ids if i in rows}

    def contains(self, attestation_id: AttestationId) -> bool:
        """Whether the attestation is stored."""
        return attestation_id in self._rows

    def get(self, attestation_id: AttestationId) -> Attestation | None:
        """The stored attestation with this id, if any."""
        held = self._rows.get(attestation_id)
        return None if held is None else held.attestation

    def envelopes(self, ids: Sequence[bytes]) -> list[bytes]:
        """The stored envelopes of those of `ids` we hold, each once."""
        rows = self._rows
        return [rows[i].attestation.data for i in dict.fromkeys(ids) if i in rows]

    def current_by_issuer(self, issuer: IdentityId, *, now_ms: int) -> list[Attestation]:
        """What `issuer` currently says, in arrival order."""
        return self._current(self._by_issuer.get(issuer, ()), now_ms)

    def current_about(self, subject: Subject, *, now_ms: int) -> list[Attestation]:
        """What is currently said about `subject`, in arrival order."""
        return self._current(self._about.get(subject, ()), now_ms)

    def _current(self, ids: Sequence[bytes], now_ms: int) -> list[Attestation]:
        held = (self._rows[i] for i in ids)
        return [h.attestation for h in held if h.current(now_ms)]

    def slot_head(self, slot_id: SlotId) -> Attestation | None:
        """The stored head of a slot, a revocation included."""
        held = self._head(slot_id)
        return None if held is None else held.attestation

    def current_in_slot(self, slot_id: SlotId, *, now_ms: int) -> Attestation | None:
        """The attestation that counts in a slot at `now_ms`."""
        held = self._head(slot_id)
        return held.attestation if held is not None and held.current(now_ms) else None

    def _head(self, slot_id: bytes) -> _Held | None:
        mark = self._slots.get(slot_id)
        held = None if mark is None else self._rows.get(mark[1])
        return held if held is not None and held.is_head else None

    def trust_edges(self, context: str, *, now_ms: int) -> list[TrustEdge]:
        """Every current trust attestation of `context`, ordered by issuer then subject."""
        edges = [
            TrustEdge(
                issuer=a.issuer, subject=IdentityId(trust.subject), value=trust.value, id=a.id
            )
            for a, trust in self._current_trust(now_ms)
            if a.slot.scope == context
        ]
        edges.sort(key=lambda e: (e.issuer, e.subject))
        return edges

    def key_bindings(self) -> list[Attestation]:
        """Every identity statement held (SPEC §16), superseded ones included."""
        return [
            held.attestation
            for held in self._rows.values()
            if is_identity_statement(held.attestation.statement)
        ]

    def positive_trust_edges(self, *, now_ms: int) -> list[tuple[IdentityId, IdentityId]]:
        """(issuer, subject) of every current trust with value > 0, any context, once each."""
        pairs = {
            (a.issuer, IdentityId(trust.subject))
            for a, trust in self._current_trust(now_ms)
            if trust.value > 0
        }
        return sorted(pairs)

    def _current_trust(self, now_ms: int) -> list[tuple[Attestation, Trust]]:
        found = []
        for held in self._rows.values():
            statement = held.attestation.statement
            if isinstance(statement, Trust) and held.current(now_ms):
                found.append((held.attestation, statement))
        return found

    def count_by_issuer(self, issuers: Sequence[IdentityId]) -> dict[IdentityId, int]:
        """How many attestations (of any state) we store from each of `issuers`."""
        return {issuer: len(self._by_issuer.get(issuer, ())) for issuer in issuers}

    def ids_in_order(
        self, *, after: tuple[int, bytes] | None = None, limit: int = 10_000
    ) -> list[tuple[int, AttestationId]]:
        """Stored `(issued_at_ms, id)` pairs in order, after a bound."""
        start = 0 if after is None else bisect.bisect_right(self._order, after)
        return [(t, AttestationId(i)) for t, i in self._order[start : start + limit]]

    def changes_since(self, cursor: int, *, limit: int = 1000) -> list[Change]:
        """Stored attestations with `seq > cursor`, in arrival order."""
        changes = []
        for seq, attestation_id in enumerate(self._feed[cursor : cursor + limit], cursor + 1):
            held = self._rows[attestation_id]
            changes.append(Change(seq=seq, attestation=held.attestation, is_head=held.is_head))
        return changes

    def statistics(self) -> StoreStatistics:
        """Counts; `file_bytes` is the envelopes' total size."""
        rows = self._rows.values()
        return StoreStatistics(
            attestations=len(self._rows),
            heads=sum(h.is_head for h in rows),
            slots=len(self._slots),
            file_bytes=sum(len(h.attestation.data) for h in rows),
        )
