"""The durable attestation store: SQLite in WAL mode, supersession by slot, indexed heads.

The store holds only *verified* attestations (`Attestation`, never raw bytes
from a peer): `apply` is the single write path (node/store/writes) and is
all-or-nothing per call.
It implements the reference semantics of `protocol.supersession` with a slot
high-water mark, so the state it reaches depends only on the set of
attestations applied, never on their order or batching.

It is a synchronous object owning one connection: use it from one thread at a
time (the trio node runs it through `trio.to_thread` behind one lock). Every
SQLite failure leaves the call as a typed `StoreError`; a failed `apply` has
rolled back and acknowledged nothing.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from node.errors import StoreCorruptError, StoreError
from node.store.health import (
    CORRUPT_HINT,
    is_corruption,
    quick_check,
    salvage_envelopes,
    store_error,
)
from node.store.records import Change, Outcome, StoreStatistics, TrustEdge
from node.store.schema import LATEST_VERSION, migrate
from node.store.writes import INSERT_ATTESTATION, Writer, existing_ids, prune, rows_where_in
from protocol.attestation import Attestation, AttestationId, decode_envelope
from protocol.errors import RemoteProtocolError
from protocol.identity import IdentityId
from protocol.statement import SlotId, Subject

__all__ = ["INSERT_ATTESTATION", "Store"]

Synchronous = Literal["FULL", "NORMAL"]
_CACHE_KIB = 64 * 1024
_MMAP_BYTES = 256 * 1024 * 1024
_CURRENT = "is_head = 1 AND kind != 4 AND (expires_at_ms IS NULL OR expires_at_ms > ?)"
_SELECT_HEAD = "SELECT head_id FROM slots WHERE slot_id = ?"


def _hint(location: str) -> str:
    """Why SQLite may have refused, when the folder says so (its own message is terse)."""
    folder = Path(location).parent
    if location != ":memory:" and folder.is_dir() and not os.access(folder, os.W_OK):
        return " (its folder is read-only: a store needs to write beside the file)"
    return ""


class Store:
    """A community's attestations in one SQLite file (or in memory, for tests)."""

    def __init__(self, connection: sqlite3.Connection, path: str) -> None:
        self._connection = connection
        self._path = path
        self._writer = Writer(connection, path)  # the single write path

    @classmethod
    def open(cls, path: Path | str, *, synchronous: Synchronous = "FULL") -> Store:
        """Open (creating and migrating if needed) the store at `path`.

        `synchronous="FULL"` (the default) makes every commit durable against
        power loss, not only against a crash of the process; batching keeps
        its cost low (DESIGN §7).

        Raises:
            StoreError: the file cannot be opened, is not a store, or is newer
                than this code.
        """
        location = str(path)
        try:
            connection = sqlite3.connect(location, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {location}: {exc}") from exc
        try:
            connection.execute("PRAGMA busy_timeout = 5000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute(f"PRAGMA synchronous = {synchronous}")
            # Index pages of random 32-byte keys are touched all over the file:
            # a 64 MiB page cache and memory-mapped reads keep them off syscalls.
            connection.execute(f"PRAGMA cache_size = -{_CACHE_KIB:d}")
            connection.execute(f"PRAGMA mmap_size = {_MMAP_BYTES:d}")
            migrate(connection, target=LATEST_VERSION)
        except (sqlite3.Error, ValueError) as exc:
            connection.close()
            if isinstance(exc, sqlite3.Error) and is_corruption(exc):
                raise store_error(location, "", exc) from exc
            raise StoreError(f"cannot use store {location}: {exc}{_hint(location)}") from exc
        return cls(connection, location)

    def close(self) -> None:
        """Close the connection; committed data is already durable."""
        self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._connection
        except sqlite3.Error as exc:
            raise store_error(self._path, "", exc) from exc

    # -- the write path (node/store/writes) -----------------------------

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
        return self._writer.apply(attestations, now_ms=now_ms)

    def existing_ids(self, ids: Sequence[bytes]) -> set[bytes]:
        """Which of `ids` are stored (one indexed lookup per id, in chunks)."""
        with self._reading() as connection:
            return existing_ids(connection, ids)

    # -- queries ---------------------------------------------------------

    def contains(self, attestation_id: AttestationId) -> bool:
        """Whether the attestation is stored (pruned ones are not)."""
        with self._reading() as connection:
            query = "SELECT 1 FROM attestations WHERE id = ?"
            return connection.execute(query, (attestation_id,)).fetchone() is not None

    def identities_between(self, low: bytes, high: bytes | None, *, limit: int) -> list[bytes]:
        """Up to `limit` known identity keys in [low, high) (None: no upper bound), in order.

        Known means named by a stored attestation, as issuer or subject; the
        unique index on the key makes this a range scan (identity prefixes).
        """
        query = "SELECT key FROM identities WHERE key >= ?"
        parameters: tuple[object, ...] = (low,)
        if high is not None:
            query += " AND key < ?"
            parameters = (low, high)
        with self._reading() as connection:
            rows = connection.execute(f"{query} ORDER BY key LIMIT ?", (*parameters, limit))
            return [bytes(row[0]) for row in rows.fetchall()]

    def get(self, attestation_id: AttestationId) -> Attestation | None:
        """The stored attestation with this id, if any."""
        with self._reading() as connection:
            query = "SELECT envelope FROM attestations WHERE id = ?"
            row = connection.execute(query, (attestation_id,)).fetchone()
        return None if row is None else self._load(row[0])

    def envelopes(self, ids: Sequence[bytes]) -> list[bytes]:
        """The envelopes (signed bytes) of those of `ids` we hold, each once, in no set order.

        What a peer asked for goes out as bytes: rebuilding each attestation
        (as `get` does) would decode what we only send on.
        """
        unique = list(dict.fromkeys(ids))
        with self._reading() as connection:
            rows = rows_where_in(connection, "SELECT envelope FROM attestations", "id", unique)
            return [row[0] for row in rows]

    def current_by_issuer(self, issuer: IdentityId, *, now_ms: int) -> list[Attestation]:
        """What `issuer` currently says (heads that are not revoked or expired)."""
        query = (
            "SELECT envelope FROM attestations WHERE issuer_ref = "  # noqa: S608  # constant SQL
            f"(SELECT ref FROM identities WHERE key = ?) AND {_CURRENT} ORDER BY seq"
        )
        return self._select_attestations(query, (issuer, now_ms))

    def current_about(self, subject: Subject, *, now_ms: int) -> list[Attestation]:
        """What is currently said about `subject` (an identity or a thing)."""
        if isinstance(subject, str):
            where = "thing = ?"
        else:
            where = "subject_ref = (SELECT ref FROM identities WHERE key = ?)"
        query = f"SELECT envelope FROM attestations WHERE {where} AND {_CURRENT} ORDER BY seq"  # noqa: S608
        return self._select_attestations(query, (subject, now_ms))

    def slot_head(self, slot_id: SlotId) -> Attestation | None:
        """The stored head of a slot, a revocation included (None if none or pruned)."""
        query = (
            "SELECT envelope FROM attestations WHERE id = "
            "(SELECT head_id FROM slots WHERE slot_id = ?) AND is_head = 1"
        )
        found = self._select_attestations(query, (slot_id,))
        return found[0] if found else None

    def current_in_slot(self, slot_id: SlotId, *, now_ms: int) -> Attestation | None:
        """The attestation that counts in a slot at `now_ms` (SPEC §5.3)."""
        query = (
            "SELECT envelope FROM attestations WHERE id = "  # noqa: S608  # constant SQL
            f"(SELECT head_id FROM slots WHERE slot_id = ?) AND {_CURRENT}"
        )
        found = self._select_attestations(query, (slot_id, now_ms))
        return found[0] if found else None

    def trust_edges(self, context: str, *, now_ms: int) -> list[TrustEdge]:
        """Every current trust attestation of `context`, as edges (for the trust engine)."""
        query = (
            "SELECT i.key, s.key, a.value, a.id FROM attestations AS a "  # noqa: S608  # constant SQL
            "JOIN identities AS i ON i.ref = a.issuer_ref "
            "JOIN identities AS s ON s.ref = a.subject_ref "
            f"WHERE a.scope = ? AND a.kind = 1 AND {_CURRENT} ORDER BY i.key, s.key"
        )
        with self._reading() as connection:
            rows = connection.execute(query, (context, now_ms)).fetchall()
        return [
            TrustEdge(issuer=IdentityId(i), subject=IdentityId(s), value=v, id=AttestationId(a))
            for i, s, v, a in rows
        ]

    def positive_trust_edges(self, *, now_ms: int) -> list[tuple[IdentityId, IdentityId]]:
        """(issuer, subject) of every current trust attestation with value > 0, any context."""
        query = (
            "SELECT DISTINCT i.key, s.key FROM attestations AS a "  # noqa: S608  # constant SQL
            "JOIN identities AS i ON i.ref = a.issuer_ref "
            "JOIN identities AS s ON s.ref = a.subject_ref "
            f"WHERE a.kind = 1 AND a.value > 0 AND {_CURRENT}"
        )
        with self._reading() as connection:
            rows = connection.execute(query, (now_ms,)).fetchall()
        return [(IdentityId(i), IdentityId(s)) for i, s in rows]

    def key_bindings(self) -> list[Attestation]:
        """Every identity statement held (SPEC §16: `key:` claims and their revocations),
        superseded ones included: binding and cut-offs are functions of the whole set."""
        return self._select_attestations(
            "SELECT envelope FROM attestations "
            "WHERE slot_kind = 2 AND substr(scope, 1, 4) = 'key:'",
            (),
        )

    def count_by_issuer(self, issuers: Sequence[IdentityId]) -> dict[IdentityId, int]:
        """How many attestations (of any state) we store from each of `issuers`."""
        counts: dict[IdentityId, int] = {}
        with self._reading() as connection:
            for issuer in issuers:
                row = connection.execute(
                    "SELECT count(*) FROM attestations WHERE issuer_ref = "
                    "(SELECT ref FROM identities WHERE key = ?)",
                    (issuer,),
                ).fetchone()
                counts[issuer] = int(row[0])
        return counts

    def ids_in_order(
        self, *, after: tuple[int, bytes] | None = None, limit: int = 10_000
    ) -> list[tuple[int, AttestationId]]:
        """Stored `(issued_at_ms, id)` pairs in order, after a bound (set reconciliation)."""
        with self._reading() as connection:
            if after is None:
                query = (
                    "SELECT issued_at_ms, id FROM attestations ORDER BY issued_at_ms, id LIMIT ?"
                )
                rows = connection.execute(query, (limit,)).fetchall()
            else:
                query = (
                    "SELECT issued_at_ms, id FROM attestations WHERE (issued_at_ms, id) > (?, ?) "
                    "ORDER BY issued_at_ms, id LIMIT ?"
                )
                rows = connection.execute(query, (after[0], after[1], limit)).fetchall()
        return [(t, AttestationId(i)) for t, i in rows]

    def changes_since(self, cursor: int, *, limit: int = 1000) -> list[Change]:
        """Stored attestations with `seq > cursor`, in arrival order (the change feed).

        Use the last change's `seq` as the next cursor. Pruned rows leave gaps.
        """
        query = "SELECT seq, envelope, is_head FROM attestations WHERE seq > ? ORDER BY seq LIMIT ?"
        with self._reading() as connection:
            rows = connection.execute(query, (cursor, limit)).fetchall()
        return [
            Change(seq=seq, attestation=self._load(envelope), is_head=bool(is_head))
            for seq, envelope, is_head in rows
        ]

    def prune(self, *, now_ms: int, retention_ms: int) -> int:
        """Delete what no longer counts and has not counted for `retention_ms`
        (the policy: `node.store.writes.prune`); the number deleted.

        Raises:
            StoreError: SQLite failed; nothing was deleted.
        """
        return prune(self._connection, self._path, now_ms=now_ms, retention_ms=retention_ms)

    def statistics(self) -> StoreStatistics:
        """Counts and file size."""
        with self._reading() as connection:
            total, heads = connection.execute(
                "SELECT count(*), coalesce(sum(is_head), 0) FROM attestations"
            ).fetchone()
            slots = connection.execute("SELECT count(*) FROM slots").fetchone()[0]
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        return StoreStatistics(
            attestations=total, heads=heads, slots=slots, file_bytes=pages * page_size
        )

    def quick_check(self, *, timeout_s: float) -> bool:
        """Check the file (SQLite's quick check) for at most `timeout_s`; see
        `node.store.health.quick_check`.

        Raises:
            StoreCorruptError: the file is damaged.
        """
        return quick_check(self._connection, self._path, timeout_s=timeout_s)

    def salvage_envelopes(self) -> list[bytes]:
        """What a damaged file still holds, row by row (unverified bytes: check them)."""
        return salvage_envelopes(self._connection)

    def integrity_check(self) -> str:
        """SQLite's `PRAGMA integrity_check`: "ok" when the file is sound."""
        with self._reading() as connection:
            return str(connection.execute("PRAGMA integrity_check").fetchone()[0])

    def _select_attestations(self, query: str, parameters: tuple[object, ...]) -> list[Attestation]:
        with self._reading() as connection:
            rows = connection.execute(query, parameters).fetchall()
        return [self._load(row[0]) for row in rows]

    def _load(self, envelope: bytes) -> Attestation:
        """Rebuild an attestation from our own file.

        It was verified before it was stored, so we check its structure (cheap)
        but not its signature again; a file that fails even that is corrupt.
        """
        try:
            return Attestation(decode_envelope(envelope))
        except RemoteProtocolError as exc:
            raise StoreCorruptError(
                f"store {self._path} is damaged (an envelope is {exc.reason.value}): {CORRUPT_HINT}"
            ) from exc
