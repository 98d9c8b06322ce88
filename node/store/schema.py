"""The store's SQLite schema and its versioned migrations.

`PRAGMA user_version` holds the schema version. Each migration is a list of
SQL statements that runs in the same transaction as the version bump, so a
crash mid-upgrade leaves the previous version intact. A database newer than
this code is refused rather than guessed at.

Design notes:
- `identities` interns 32-byte keys as small integers: the indexes on issuer
  and subject then hold a few bytes per row instead of 32, which roughly
  halves the write cost of an attestation.
- `attestations` keeps every verified attestation we hold: heads and the
  superseded ones (until pruned). `seq` is the arrival order and the cursor of
  the change feed; AUTOINCREMENT so a pruned row's seq is never reused.
- `slots` keeps, per slot, the order key of its head: a high-water mark that
  survives pruning, so that a pruned head still blocks older attestations
  (a revocation is a tombstone for ever, SPEC §5.2).
- Indexes on heads only (partial indexes) serve the queries of the later
  layers without paying for superseded rows; the issuer index covers every
  row, because relay quotas count superseded rows too.
"""

from __future__ import annotations

import sqlite3

__all__ = ["LATEST_VERSION", "MIGRATIONS", "migrate", "schema_version"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # Version 1: interned identities, attestations, slot high-water marks, the
    # order index for set reconciliation.
    (
        """CREATE TABLE identities (
            ref INTEGER PRIMARY KEY,
            key BLOB NOT NULL UNIQUE CHECK (length(key) = 32)
        )""",
        """CREATE TABLE attestations (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id BLOB NOT NULL UNIQUE CHECK (length(id) = 32),
            slot_id BLOB NOT NULL CHECK (length(slot_id) = 32),
            envelope BLOB NOT NULL,
            issuer_ref INTEGER NOT NULL REFERENCES identities (ref),
            kind INTEGER NOT NULL,
            slot_kind INTEGER NOT NULL,
            subject_ref INTEGER REFERENCES identities (ref),
            thing TEXT,
            scope TEXT NOT NULL,
            value INTEGER,
            issued_at_ms INTEGER NOT NULL,
            expires_at_ms INTEGER,
            received_at_ms INTEGER NOT NULL,
            is_head INTEGER NOT NULL,
            superseded_at_ms INTEGER,
            CHECK ((subject_ref IS NULL) != (thing IS NULL))
        )""",
        """CREATE TABLE slots (
            slot_id BLOB PRIMARY KEY,
            head_issued_at_ms INTEGER NOT NULL,
            head_id BLOB NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX attestations_order ON attestations (issued_at_ms, id)",
    ),
    # Version 2: query indexes over slot heads for the trust engine and the API.
    (
        "CREATE INDEX heads_by_issuer ON attestations (issuer_ref) WHERE is_head = 1",
        """CREATE INDEX heads_by_subject ON attestations (subject_ref)
            WHERE is_head = 1 AND subject_ref IS NOT NULL""",
        """CREATE INDEX heads_by_thing ON attestations (thing)
            WHERE is_head = 1 AND thing IS NOT NULL""",
        "CREATE INDEX trust_edges ON attestations (scope) WHERE is_head = 1 AND kind = 1",
    ),
    # Version 3: every row by issuer, not only heads. The relay quota counts what
    # an issuer has stored in any state; with a heads-only index that count was
    # a scan of the whole table per issuer, so a farm of fresh identities made
    # each admission cost O(store) (found by benchmarks/flood.py). The heads
    # query uses the same index through its second column.
    (
        "CREATE INDEX by_issuer ON attestations (issuer_ref, is_head)",
        "DROP INDEX heads_by_issuer",
    ),
    # Version 4: device bindings (SPEC §16), every state. They decide whose key speaks
    # for whom, so superseded and revoked ones count too; the partial index keeps
    # the relay's look-up at the few rows that are bindings.
    (
        """CREATE INDEX key_bindings ON attestations (issuer_ref)
            WHERE slot_kind = 2 AND substr(scope, 1, 4) = 'key:'""",
    ),
)
LATEST_VERSION = len(MIGRATIONS)


def schema_version(connection: sqlite3.Connection) -> int:
    """The database's schema version (0 for a new, empty database)."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(connection: sqlite3.Connection, *, target: int = LATEST_VERSION) -> int:
    """Upgrade the schema to `target`, one version per transaction; return the old version.

    The connection must be in autocommit mode (isolation_level=None): we open
    and commit the transactions ourselves.

    Raises:
        sqlite3.Error: SQLite refused (the caller turns this into a StoreError).
        ValueError: the database is newer than `target`.
    """
    current = schema_version(connection)
    if current > target:
        raise ValueError(f"database schema {current} is newer than this trustnode ({target})")
    for version in range(current + 1, target + 1):
        connection.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[version - 1]:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version:d}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
    return current
