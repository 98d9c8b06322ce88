"""The store's write path: one transaction per batch, settled by slot (node/store/heads).

`Store.apply` (node/store/store) is the single way attestations get into the
store, and it is all-or-nothing per call; this module is that path. Each
attempt assumes what gossip mostly brings (new ids, first statements in
their slots) and skips the lookups that would confirm it: the UNIQUE index
or the slot claim says when the assumption was wrong, the transaction rolls
back, and the next attempt looks up what the previous one assumed. Identity
refs given in a committed transaction are cached (`Writer._refs`). The other
write, `prune`, deletes what stopped counting long enough ago.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from node.store.heads import Row, plan_batch
from node.store.health import store_error
from node.store.records import Outcome
from protocol.attestation import Attestation
from protocol.statement import Kind

__all__ = ["INSERT_ATTESTATION", "Writer", "existing_ids", "prune", "rows_where_in"]

_SQL_CHUNK = 900  # bound on `IN (...)` parameters per statement
INSERT_ATTESTATION = """INSERT INTO attestations (id, slot_id, envelope, issuer_ref, kind,
    slot_kind, subject_ref, thing, scope, value, issued_at_ms, expires_at_ms, received_at_ms,
    is_head, superseded_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_IDENTITY_CACHE_SIZE = 200_000
_REVOKE = int(Kind.REVOKE)


class _SlotsHeld(Exception):  # noqa: N818  # a signal between two methods, not an error
    """A batch settled as if its slots were new met a slot that has a head."""


def _no_heads(slot_ids: set[bytes]) -> dict[bytes, tuple[int, bytes]]:
    del slot_ids
    return {}


def rows_where_in(
    connection: sqlite3.Connection, select: str, column: str, keys: Sequence[bytes]
) -> Iterator[tuple[Any, ...]]:
    """The rows of `select ... WHERE column IN keys`, asked in chunks (SQLite
    limits the number of bound parameters in one statement)."""
    for start in range(0, len(keys), _SQL_CHUNK):
        chunk = keys[start : start + _SQL_CHUNK]
        marks = ",".join("?" * len(chunk))
        # `select` and `column` are this module's constants; values go as parameters.
        yield from connection.execute(f"{select} WHERE {column} IN ({marks})", chunk)


def existing_ids(connection: sqlite3.Connection, ids: Sequence[bytes]) -> set[bytes]:
    """Which of `ids` are stored (one indexed lookup per id, in chunks)."""
    rows = rows_where_in(connection, "SELECT id FROM attestations", "id", ids)
    return {row[0] for row in rows}


def prune(connection: sqlite3.Connection, path: str, *, now_ms: int, retention_ms: int) -> int:
    """Delete from the store on `connection` (at `path`) what no longer counts and
    has not counted for `retention_ms` (`Store.prune`): the other write, beside `Writer`.

    The pruning policy (documented in the README): superseded attestations
    are deleted `retention_ms` after they were superseded; expired heads
    `retention_ms` after they expired. Revocations are never pruned: they
    are small, and peers that still hold what they revoke need them. Slot
    high-water marks are kept, so a pruned attestation that is sent to us
    again can never become a head again. Returns the number deleted.

    Raises:
        StoreError: SQLite failed; nothing was deleted.
    """
    horizon = now_ms - retention_ms
    try:
        connection.execute("BEGIN IMMEDIATE")
        superseded = connection.execute(
            "DELETE FROM attestations WHERE is_head = 0 AND superseded_at_ms <= ?",
            (horizon,),
        ).rowcount
        expired = connection.execute(
            "DELETE FROM attestations WHERE is_head = 1 AND kind != ? "
            "AND expires_at_ms IS NOT NULL AND expires_at_ms <= ?",
            (_REVOKE, horizon),
        ).rowcount
        connection.execute("COMMIT")
    except sqlite3.Error as exc:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise store_error(path, "prune failed: ", exc) from exc
    return int(superseded) + int(expired)


class Writer:
    """Applies batches of verified attestations to one connection (the store's)."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._connection = connection
        self._path = path
        # key -> ref of identities known to be committed (refs never change).
        self._refs: dict[bytes, int] = {}
        # Whether the next batch first claims its slots as new (`apply`): until
        # a claim fails, and again once a batch's look-up found no slot held.
        self._claim_first = True

    def apply(self, attestations: Sequence[Attestation], *, now_ms: int) -> list[Outcome]:
        """Store verified attestations in one transaction; return one outcome each.

        Outcomes are NEW (now the head of its slot), SUPERSEDED (stored, but
        older than its slot's head) or DUPLICATE (already held, or the very
        head a pruned slot remembers). When this returns, the transaction is
        committed.

        Raises:
            StoreError: SQLite failed (disk full, read-only, corrupt); the
                transaction was rolled back and nothing was stored.
        """
        # Each attempt assumes what gossip mostly brings, and the next one looks
        # up what the previous one wrongly assumed (its transaction rolled back).
        # What the last batch met decides the first attempt: a join or an import
        # brings later statements in slots an earlier batch filled, and claiming
        # first then failed for 7 batches in 10 (benchmarks.ingest), each paying
        # the claim, a rollback and a second plan for nothing.
        try:
            try:
                if self._claim_first:
                    try:
                        return self._transaction(attestations, now_ms=now_ms, claim=True)
                    except _SlotsHeld:
                        self._claim_first = False
                # Some of its slots may have a head already: compare with those.
                return self._transaction(attestations, now_ms=now_ms)
            except sqlite3.IntegrityError:
                # Something in the batch was already stored: redo it, looking first.
                return self._transaction(attestations, now_ms=now_ms, probe=True)
        except sqlite3.Error as exc:
            raise store_error(self._path, "write failed, nothing stored: ", exc) from exc

    def _transaction(
        self,
        attestations: Sequence[Attestation],
        *,
        now_ms: int,
        claim: bool = False,
        probe: bool = False,
    ) -> list[Outcome]:
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            new_refs: dict[bytes, int] = {}
            outcomes = self._apply_in_transaction(
                attestations, now_ms=now_ms, claim=claim, probe=probe, new_refs=new_refs
            )
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        # Only committed refs may be cached: a rolled-back insert frees its ref.
        if len(self._refs) + len(new_refs) > _IDENTITY_CACHE_SIZE:
            self._refs.clear()
        self._refs.update(new_refs)
        return outcomes

    def _apply_in_transaction(
        self,
        attestations: Sequence[Attestation],
        *,
        now_ms: int,
        claim: bool,
        probe: bool,
        new_refs: dict[bytes, int],
    ) -> list[Outcome]:
        # Gossip mostly brings what we lack, so by default we skip looking ids
        # up: the UNIQUE index catches a stored one and `apply` retries with
        # `probe`. Duplicates within the batch are caught in either case.
        stored = existing_ids(self._connection, [a.id for a in attestations]) if probe else set()
        if claim:
            # And mostly first statements in their slots: settle the batch as if
            # no slot had a head, and claim its slots. If one had a head, the
            # claim says so (SQLite skipped it) and `apply` retries, looking
            # them up. Looking up every slot of every batch first cost 7 % of
            # a 1000-member simulation's burst (a store lookup per attestation).
            plan = plan_batch(attestations, stored=stored, load_heads=_no_heads)
            self._claim_slots(plan.heads)
        else:
            plan = plan_batch(attestations, stored=stored, load_heads=self._slot_heads)
        refs = self._intern([row.attestation for row in plan.rows], new_refs)
        self._write(plan.rows, None if claim else plan.heads, plan.demoted, refs, now_ms=now_ms)
        return plan.outcomes()

    def _claim_slots(self, heads: dict[bytes, tuple[int, bytes]]) -> None:
        """Give each of these slots its first head; `_SlotsHeld` if one has a head already."""
        if not heads:
            return
        claimed = self._connection.executemany(
            "INSERT INTO slots (slot_id, head_issued_at_ms, head_id) VALUES (?, ?, ?) "
            "ON CONFLICT (slot_id) DO NOTHING",
            [
                (slot_id, issued_at_ms, head_id)
                for slot_id, (issued_at_ms, head_id) in heads.items()
            ],
        ).rowcount
        if claimed != len(heads):
            raise _SlotsHeld

    def _intern(
        self, attestations: Sequence[Attestation], new_refs: dict[bytes, int]
    ) -> dict[bytes, int]:
        """Refs of every issuer and identity subject of `attestations`, adding new identities."""
        refs = self._refs
        wanted: set[bytes] = set()
        for attestation in attestations:
            wanted.add(attestation.issuer)
            subject = attestation.statement.subject
            if not isinstance(subject, str):
                wanted.add(subject)
        local = {key: refs[key] for key in wanted if key in refs}
        missing = sorted(key for key in wanted if key not in local)
        if missing:
            # Those not cached are mostly new (the cache holds every committed
            # ref up to its size): give them the next refs and add those not
            # there. No other writer runs in our transaction, so when every one
            # was added, their refs are the ones we gave; only when some were
            # there already do we read the refs back. (Reading them always
            # cost a lookup per new identity: 10 % of a gossip batch.)
            connection = self._connection
            top = connection.execute("SELECT max(ref) FROM identities").fetchone()[0] or 0
            given = {key: top + n for n, key in enumerate(missing, 1)}
            added = connection.executemany(
                "INSERT OR IGNORE INTO identities (ref, key) VALUES (?, ?)",
                [(ref, key) for key, ref in given.items()],
            ).rowcount
            found = given if added == len(missing) else self._lookup_refs(missing)
            new_refs.update(found)
            local.update(found)
        return local

    def _lookup_refs(self, keys: Sequence[bytes]) -> dict[bytes, int]:
        rows = rows_where_in(self._connection, "SELECT key, ref FROM identities", "key", keys)
        return dict(rows)

    def _write(
        self,
        rows: list[Row],
        heads: dict[bytes, tuple[int, bytes]] | None,
        demoted: list[bytes],
        refs: dict[bytes, int],
        *,
        now_ms: int,
    ) -> None:
        """Insert `rows`, demote superseded heads, and record the slots' new `heads`
        (None: claimed already, `_claim_slots`)."""
        # Each statement costs even with nothing to do: only those with rows run.
        connection = self._connection
        if rows:
            connection.executemany(INSERT_ATTESTATION, [row.values(refs, now_ms) for row in rows])
        if demoted:
            connection.executemany(
                "UPDATE attestations SET is_head = 0, superseded_at_ms = ? WHERE id = ?",
                [(now_ms, head_id) for head_id in demoted],
            )
        if heads is not None and (new_heads := {row.slot_id for row in rows if row.is_head}):
            connection.executemany(
                "INSERT INTO slots (slot_id, head_issued_at_ms, head_id) VALUES (?, ?, ?) "
                "ON CONFLICT (slot_id) DO UPDATE SET "
                "head_issued_at_ms = excluded.head_issued_at_ms, head_id = excluded.head_id",
                [(slot_id, heads[slot_id][0], heads[slot_id][1]) for slot_id in new_heads],
            )

    def _slot_heads(self, slot_ids: set[bytes]) -> dict[bytes, tuple[int, bytes]]:
        select = "SELECT slot_id, head_issued_at_ms, head_id FROM slots"
        rows = rows_where_in(self._connection, select, "slot_id", list(slot_ids))
        heads = {slot_id: (issued_at_ms, head_id) for slot_id, issued_at_ms, head_id in rows}
        # None held: the batches are back to new slots (gossip), claim first again.
        self._claim_first = not heads
        return heads
