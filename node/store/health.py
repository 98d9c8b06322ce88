"""Is the store's file sound: SQLite's quick check (bounded in time), telling corruption
from other failures, and salvaging what a damaged file still holds.

A damaged `store.db` used to go unnoticed until a sync read a bad page, and then
each session failed the same way, ten times a second, forever. The daemon now
checks the file before it says `ready` (`quick_check`), and a corruption found
later stops it (`StoreCorruptError`, told apart here from a full disk, which
heals). `salvage_envelopes` reads row by row, skipping what cannot be read, so
`trustnode export` can save what is left before the file is replaced and the
rest is synced again from peers.
"""

from __future__ import annotations

import sqlite3
import time

from node.errors import StoreCorruptError, StoreError

__all__ = ["CORRUPT_HINT", "is_corruption", "quick_check", "salvage_envelopes", "store_error"]

# SQLite's primary result codes for a damaged file (the low byte of extended codes).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
_PROGRESS_STEPS = 10_000  # SQLite virtual-machine steps between deadline checks
_MAX_DETAIL = 160
CORRUPT_HINT = (
    "save what can be read with `trustnode export --out saved.txt`, move store.db aside, "
    "then `trustnode import saved.txt` and `trustnode run` to sync the rest from peers "
    "(README: A damaged store)"
)


def is_corruption(error: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is damaged (not full, locked or read-only)."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return "malformed" in str(error)  # an SQLite too old to say its code


def store_error(path: str, what: str, error: sqlite3.Error) -> StoreError:
    """The typed error for an SQLite failure: `StoreCorruptError` for a damaged file."""
    if is_corruption(error):
        return StoreCorruptError(f"store {path} is damaged ({error}): {CORRUPT_HINT}")
    return StoreError(f"store {path}: {what}{error}")


def quick_check(connection: sqlite3.Connection, path: str, *, timeout_s: float) -> bool:
    """Run `PRAGMA quick_check` for at most `timeout_s`.

    Returns True when the whole file was checked, False when time ran out
    first (a large store on a slow disk: the daemon starts, and what is read
    later is still checked by SQLite as it goes).

    Raises:
        StoreCorruptError: the check found damage (the message names the first).
    """
    deadline = time.monotonic() + timeout_s
    connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _PROGRESS_STEPS)
    try:
        rows = connection.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            return False
        raise store_error(path, "check failed: ", exc) from exc
    except sqlite3.Error as exc:
        raise store_error(path, "check failed: ", exc) from exc
    finally:
        connection.set_progress_handler(None, 0)
    problem = " ".join(str(r[0]) for r in rows).replace("\n", " ").strip()
    if problem != "ok":
        detail = problem.removeprefix("*** in database main *** ")[:_MAX_DETAIL]
        raise StoreCorruptError(f"store {path} is damaged ({detail}): {CORRUPT_HINT}")
    return True


def salvage_envelopes(connection: sqlite3.Connection) -> list[bytes]:
    """Every envelope that can still be read, row by row (a damaged page loses its rows
    only). The caller verifies what it gets: these are bytes from a damaged file."""
    last = _last_seq(connection)
    envelopes = []
    for seq in range(1, last + 1):
        try:
            row = connection.execute(
                "SELECT envelope FROM attestations WHERE seq = ?", (seq,)
            ).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None and isinstance(row[0], bytes):
            envelopes.append(row[0])
    return envelopes


def _last_seq(connection: sqlite3.Connection) -> int:
    """The highest arrival number ever given (AUTOINCREMENT's record, else the table's)."""
    for query in (
        "SELECT seq FROM sqlite_sequence WHERE name = 'attestations'",
        "SELECT max(seq) FROM attestations",
    ):
        try:
            row = connection.execute(query).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None and isinstance(row[0], int):
            return row[0]
    return 0
